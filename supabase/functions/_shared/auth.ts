import { createRemoteJWKSet, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from "jose";
import { ApiError } from "./errors.ts";

export interface AuthConfig {
  supabaseUrl: string;
  /** HS256 secret for projects on legacy JWT secrets; JWKS of the project is used when absent. */
  jwtSecret?: string;
  /** The service role key as configured, so non-JWT secret keys (`sb_secret_...`) also work. */
  serviceRoleKey?: string;
}

export interface UserCaller {
  userId: string;
  email: string | null;
}

export interface Authenticator {
  /** Verifies a signed-in user's access token; rejects anon and service keys with 401. */
  requireUser(request: Request): Promise<UserCaller>;
  /** Verifies service credentials; a valid user or anon token gets 403, anything else 401. */
  requireService(request: Request): Promise<void>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The `aud` claim of the access tokens Supabase Auth issues to signed-in users. */
const USER_AUDIENCE = "authenticated";

/**
 * Algorithms accepted per key source. Supabase Auth signs with HS256 under the legacy JWT
 * secret and with ES256 or RS256 under signing keys published as JWKS (per the JWT guide at
 * supabase.com/docs/guides/auth/jwts). Without this list jose accepts HS384 and HS512 too.
 */
const SECRET_ALGORITHMS = ["HS256"];
const JWKS_ALGORITHMS = ["ES256", "RS256"];

/**
 * Creates the caller checks that every function runs itself, whatever the gateway already
 * checked, because `verify_jwt` can be switched off per function.
 */
export function createAuthenticator(config: AuthConfig): Authenticator {
  const verify = jwtVerifier(config);

  return {
    async requireUser(request) {
      const claims = await verify(bearerToken(request));
      if (claims.role !== "authenticated" || typeof claims.sub !== "string" || !UUID.test(claims.sub)) {
        throw new ApiError("unauthorized", "a signed-in user's access token is required; API keys are not enough");
      }
      const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
      if (!audiences.includes(USER_AUDIENCE)) {
        throw new ApiError("unauthorized", `invalid access token: its aud claim must be "${USER_AUDIENCE}", as in tokens Supabase Auth issues to users`);
      }
      return { userId: claims.sub.toLowerCase(), email: typeof claims.email === "string" ? claims.email : null };
    },

    async requireService(request) {
      const token = bearerToken(request);
      if (config.serviceRoleKey !== undefined && (await constantTimeEqual(token, config.serviceRoleKey))) return;

      const claims = await verify(token);
      if (claims.role !== "service_role") {
        throw new ApiError("forbidden", "this endpoint requires the service role key");
      }
    },
  };
}

function jwtVerifier(config: AuthConfig): (token: string) => Promise<JWTPayload> {
  const key: Uint8Array | JWTVerifyGetKey = config.jwtSecret
    ? new TextEncoder().encode(config.jwtSecret)
    : createRemoteJWKSet(new URL("/auth/v1/.well-known/jwks.json", config.supabaseUrl));
  const algorithms = config.jwtSecret ? SECRET_ALGORITHMS : JWKS_ALGORITHMS;

  return async (token) => {
    try {
      const { payload } = await jwtVerify(token, key as Uint8Array, { algorithms });
      return payload;
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new ApiError("unauthorized", `invalid access token: ${reason}`);
    }
  };
}

/** Returns the Bearer credential of a request, or raises 401 when there is none. */
export function bearerToken(request: Request): string {
  const match = /^Bearer\s+(\S+)$/i.exec(request.headers.get("authorization") ?? "");
  if (!match?.[1]) {
    throw new ApiError("unauthorized", "missing Authorization header; send `Authorization: Bearer <token>`");
  }
  return match[1];
}

/** Compares two strings in constant time by comparing their SHA-256 digests. */
export async function constantTimeEqual(a: string, b: string): Promise<boolean> {
  const encoder = new TextEncoder();
  const [left, right] = await Promise.all([
    crypto.subtle.digest("SHA-256", encoder.encode(a)),
    crypto.subtle.digest("SHA-256", encoder.encode(b)),
  ]);
  const x = new Uint8Array(left);
  const y = new Uint8Array(right);
  let difference = 0;
  for (let i = 0; i < x.length; i += 1) difference |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return difference === 0;
}
