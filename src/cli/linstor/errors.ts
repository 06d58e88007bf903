//! Errors of the LINSTOR-style CLI, each with the exit code LINSTOR's Python client uses for
//! the same failure, so that scripts written against `linstor` read mirra's the same way.

/** Exit codes of python-linstor's `ExitCode` that mirra's CLI produces. */
export const exitCodes = {
  apiError: 10,
  connectionError: 20,
  connectionTimeout: 21,
  unexpectedReply: 22,
} as const;

export class LinstorCliError extends Error {
  override name = "LinstorCliError";
  readonly exitCode: number;
  /** True when the command already printed the details (the controller's messages). */
  readonly reported: boolean;
  constructor(message: string, exitCode: number, reported: boolean, options?: ErrorOptions) {
    super(message, options);
    this.exitCode = exitCode;
    this.reported = reported;
  }
}

/** The controller answered with at least one ApiCallRc error; its messages are printed. */
export class ApiReplyError extends LinstorCliError {
  override name = "ApiReplyError";
  readonly status: number;
  constructor(message: string, status: number) {
    super(message, exitCodes.apiError, true);
    this.status = status;
  }
}

/** No controller in `--controllers` could be reached. */
export class ControllerUnreachableError extends LinstorCliError {
  override name = "ControllerUnreachableError";
  constructor(message: string, timedOut: boolean, options?: ErrorOptions) {
    super(
      message,
      timedOut ? exitCodes.connectionTimeout : exitCodes.connectionError,
      false,
      options,
    );
  }
}

/** The controller answered something that is not the API's JSON. */
export class UnexpectedReplyError extends LinstorCliError {
  override name = "UnexpectedReplyError";
  constructor(message: string, options?: ErrorOptions) {
    super(message, exitCodes.unexpectedReply, false, options);
  }
}
