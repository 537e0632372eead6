/**
 * Error bodies of learnhub and of Jupyter Server, turned into one message a person can read.
 *
 * learnhub's services and the single-user server extension answer
 * `{"error": {"status", "message", "details", "request_id"}}`; Jupyter Server's own handlers
 * answer `{"message": ..., "reason": ...}`; a proxy in between may answer HTML or nothing.
 */

export interface IErrorBody {
  status?: number;
  message?: string;
  details?: { [key: string]: unknown } | null;
  request_id?: string;
}

/** An HTTP call that failed: status, readable message, and the error body's details. */
export class LearnhubError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details: { [key: string]: unknown } = {},
    readonly requestId?: string
  ) {
    super(message);
    this.name = 'LearnhubError';
  }
}

const STATUS_TEXT: { [status: number]: string } = {
  0: 'The server could not be reached (network error).',
  400: 'The request was not understood (400).',
  401: 'You are not logged in any more: reload the page (401).',
  403: 'You are not allowed to do that (403).',
  404: 'Not found (404).',
  409: 'That conflicts with the current state (409).',
  413: 'The upload is too large (413).',
  422: 'The request was refused as invalid (422).',
  429: 'Too many requests: try again in a moment (429).',
  500: 'The server failed (500).',
  502: 'The service is not available right now (502).',
  503: 'The service is not available right now (503).',
  504: 'The service did not answer in time (504).'
};

function isObject(value: unknown): value is { [key: string]: unknown } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The `details` object of a learnhub error body, or `{}`. */
export function errorDetails(body: unknown): { [key: string]: unknown } {
  if (isObject(body) && isObject(body.error) && isObject(body.error.details)) {
    return body.error.details;
  }
  return {};
}

/**
 * The message to show for a failed call.
 *
 * @param status the HTTP status (0 when the request never got an answer)
 * @param body the parsed JSON body, or the raw text, or undefined
 */
export function errorMessage(status: number, body: unknown): string {
  if (isObject(body)) {
    const error = body.error;
    if (isObject(error) && typeof error.message === 'string' && error.message.trim()) {
      return error.message.trim();
    }
    if (typeof error === 'string' && error.trim()) {
      return error.trim();
    }
    if (typeof body.message === 'string' && body.message.trim()) {
      return body.message.trim();
    }
    if (typeof body.reason === 'string' && body.reason.trim()) {
      return body.reason.trim();
    }
  }
  if (typeof body === 'string') {
    const text = body.trim();
    // A short plain-text answer is worth showing; an HTML error page is not.
    if (text && text.length <= 300 && !/^<(!doctype|html)/i.test(text)) {
      return text;
    }
  }
  return STATUS_TEXT[status] ?? `The request failed (${status}).`;
}

/** Build a LearnhubError from a status and a body (parsed JSON or text). */
export function toLearnhubError(status: number, body: unknown): LearnhubError {
  const requestId =
    isObject(body) && isObject(body.error) && typeof body.error.request_id === 'string'
      ? body.error.request_id
      : undefined;
  return new LearnhubError(status, errorMessage(status, body), errorDetails(body), requestId);
}

/** The message of anything thrown: a LearnhubError, an Error, or a value. */
export function describeError(reason: unknown): string {
  if (reason instanceof LearnhubError) {
    return reason.message;
  }
  if (reason instanceof Error && reason.message) {
    return reason.message;
  }
  if (typeof reason === 'string' && reason) {
    return reason;
  }
  return 'Something went wrong.';
}

/** The message of a stream `{"topic", "error": {...}}` frame. */
export function streamErrorMessage(error: unknown): string {
  if (isObject(error)) {
    const status = typeof error.status === 'number' ? error.status : 0;
    return errorMessage(status, { error });
  }
  return errorMessage(0, error);
}
