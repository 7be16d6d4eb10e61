/** A command line the CLI cannot act on; printed with the usage, exit status 2. */
export class UsageError extends Error {
  readonly code = 'EDGEBRIDGE_USAGE';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Input the command was given but cannot use (e.g. bad handler details); exit status 2, no usage. */
export class InputError extends Error {
  readonly code = 'EDGEBRIDGE_BAD_INPUT';
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}
