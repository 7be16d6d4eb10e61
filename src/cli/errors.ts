/** A command line the CLI cannot act on; printed with the usage, exit status 2. */
export class UsageError extends Error {
  readonly code = 'EDGEBRIDGE_USAGE';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
