// Typed errors with user-facing one-line messages; cli/main.ts maps them to exit codes.

/** An error whose message is meant for the user. exitCode 2 = usage error, 1 = runtime failure. */
export class FlaError extends Error {
  constructor(message: string, readonly exitCode: 1 | 2 = 1) {
    super(message);
    this.name = new.target.name;
  }
}

/** Bad command-line usage: unknown option, value out of range, missing argument. */
export class UsageError extends FlaError {
  constructor(message: string) { super(message, 2); }
}

/** A checkpoint or data file that cannot be read as expected. */
export class FormatError extends FlaError {}

/** A checkpoint whose architecture or options are not supported. */
export class UnsupportedModelError extends FlaError {}

/** A tensor shape that does not fit an op. */
export class ShapeError extends FlaError {}

/** GPU failures: no adapter, WGSL compile error, device lost, out of memory. */
export class GpuError extends FlaError {}
