/**
 * A URL as a log line or an error may show it: without user and password.
 * Text that is not a URL is not shown at all (it may be a mistyped secret).
 */
export function urlForLog(text: string): string {
  try {
    const url = new URL(text);
    url.username = '';
    url.password = '';
    return url.href;
  } catch {
    return '(not a URL)';
  }
}
