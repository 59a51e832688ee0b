import { ErrorBody } from "@berth/shared";

/**
 * Codes the client itself raises, next to the server's codes from `@berth/shared`:
 * `network_error` when no HTTP response arrived (status 0), `invalid_response` when a response
 * did not match the contract, and `data_api_error` when PostgREST rejected a table read.
 */
export const CLIENT_ERROR_CODES = ["network_error", "invalid_response", "data_api_error"] as const;

/**
 * The one error type of the client. `code` is the stable code from the error body (see
 * `ERROR_STATUS` in `@berth/shared`) or a client code. Callers branch on it, never on `message`.
 */
export class BerthError extends Error {
  override name = "BerthError";

  constructor(
    readonly code: string,
    /** HTTP status of the response, or 0 when the request got no response. */
    readonly status: number,
    message: string,
    readonly details?: unknown,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** Whether the server reported that the resource does not exist (or belongs to someone else). */
  get isNotFound(): boolean {
    return this.status === 404;
  }
}

/**
 * Builds a BerthError from a non-2xx response. A body in Berth's error shape keeps its code,
 * message and details. Any other body, such as a proxy's HTML page, gets a code derived from
 * the status, so callers still have a code to branch on.
 */
export async function errorFromResponse(response: Response, requestLine: string): Promise<BerthError> {
  const text = await response.text().catch(() => "");
  const parsed = ErrorBody.safeParse(parseJson(text));
  if (parsed.success) {
    const { code, message, details } = parsed.data.error;
    return new BerthError(code, response.status, message, details);
  }

  const excerpt = text.trim().slice(0, 200);
  const message = `${requestLine} failed with HTTP ${response.status}${excerpt ? `: ${excerpt}` : " and an empty body"}`;
  return new BerthError(codeForStatus(response.status), response.status, message);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Falls back to the generic code of a status when the body carries none. */
function codeForStatus(status: number): string {
  if (status === 400) return "invalid_request";
  if (status === 401) return "unauthorized";
  if (status === 403) return "forbidden";
  if (status === 404) return "not_found";
  if (status === 409) return "conflict";
  if (status === 503) return "function_unavailable";
  return "internal_error";
}
