/**
 * Memoizes a suite's async setup so that each test awaits it itself. A setup
 * that throws (a missing peer, say) then fails every test with its message,
 * where a throwing before() hook would only mark them cancelled.
 */
export function lazy<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => (made ??= make());
}

/** The value of a lazy setup if it was ever started and succeeded; for after() hooks. */
export async function settled<T>(setup: Promise<T> | undefined): Promise<T | undefined> {
  return setup?.catch(() => undefined);
}
