import { createHash, timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { AgentError } from "../errors.ts";

/**
 * Requires `Authorization: Bearer <token>`: 401 `unauthorized` without credentials, 403
 * `forbidden` with a wrong token. Both sides are hashed before the constant-time comparison,
 * so neither the content nor the length of the token leaks through timing.
 */
export function bearerAuth(token: string): MiddlewareHandler {
  const expected = digest(token);

  return async (c, next) => {
    const header = c.req.header("authorization");
    const match = header === undefined ? null : /^Bearer[ ]+(\S+)[ ]*$/i.exec(header);
    if (match === null) {
      c.header("WWW-Authenticate", 'Bearer realm="berth-dtma"');
      throw new AgentError("unauthorized", "Missing credentials: send the agent token as Authorization: Bearer <token>.");
    }
    if (!timingSafeEqual(digest(match[1]!), expected)) {
      throw new AgentError("forbidden", "The agent token is not valid for this agent.");
    }
    await next();
  };
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}
