import { SignJWT, jwtVerify, type JWTPayload } from "jose";

/**
 * The JWT secret of `supabase start`'s local stack. It is public and only ever signs local
 * development and test tokens; hosted projects have their own secret.
 */
export const LOCAL_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long";

const TEN_YEARS_SECONDS = 10 * 365 * 24 * 3600;

export type ApiRole = "anon" | "authenticated" | "service_role";

export interface MintOptions {
  secret?: string;
  /** Lifetime in seconds; negative values mint a token that has already expired. */
  expiresInSeconds?: number;
}

/** Signs claims with HS256, the algorithm of Supabase's legacy JWT secret. */
export async function signJwt(claims: JWTPayload, options: MintOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const key = new TextEncoder().encode(options.secret ?? LOCAL_JWT_SECRET);
  return new SignJWT({ iss: "supabase-demo", ...claims })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt(now)
    .setExpirationTime(now + (options.expiresInSeconds ?? TEN_YEARS_SECONDS))
    .sign(key);
}

/** Mints the access token Supabase Auth would issue to a signed-in user. */
export function mintUserJwt(userId: string, email?: string, options?: MintOptions): Promise<string> {
  return signJwt({ sub: userId, role: "authenticated", aud: "authenticated", email }, options);
}

/** Mints an API key of the kind Supabase calls the anon key. */
export function mintAnonKey(options?: MintOptions): Promise<string> {
  return signJwt({ role: "anon" }, options);
}

/** Mints an API key of the kind Supabase calls the service role key. */
export function mintServiceRoleKey(options?: MintOptions): Promise<string> {
  return signJwt({ role: "service_role" }, options);
}

/** Verifies a token the way PostgREST does before it switches role: signature, expiry, role. */
export async function verifyJwt(token: string, secret: string = LOCAL_JWT_SECRET): Promise<JWTPayload & { role: ApiRole }> {
  const { payload } = await jwtVerify(token, new TextEncoder().encode(secret), { algorithms: ["HS256"] });
  const role = payload.role;
  if (role !== "anon" && role !== "authenticated" && role !== "service_role") {
    throw new Error(`JWT role ${JSON.stringify(role)} is not one of anon, authenticated, service_role`);
  }
  return { ...payload, role };
}
