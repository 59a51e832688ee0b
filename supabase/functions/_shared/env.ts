import { z } from "zod";

const Milliseconds = z.coerce.number().int().positive();

/**
 * Settings every Berth function reads from its environment. On Supabase the SUPABASE_*
 * values are injected by the platform; BERTH_* values are set with `supabase secrets set`.
 */
export const FunctionEnv = z.object({
  SUPABASE_URL: z.url(),
  SUPABASE_DB_URL: z.string().min(1),
  /** HS256 secret of the project's legacy JWTs; when absent, tokens are checked against JWKS. */
  SUPABASE_JWT_SECRET: z.string().min(32).optional(),
  SUPABASE_SERVICE_ROLE_KEY: z.string().min(1).optional(),
  /** Secret from which every toolbox's agent token is derived (HMAC-SHA256). */
  BERTH_AGENT_TOKEN_SECRET: z.string().min(32),
  /** Budget for one agent call before the request returns 202 and leaves the rest to the reconciler. */
  BERTH_AGENT_TIMEOUT_MS: Milliseconds.default(8_000),
  /** How long a lease taken for an agent call lasts; must exceed the agent timeout. */
  BERTH_LEASE_TTL_SECONDS: z.coerce.number().int().min(5).default(30),
  /**
   * Whether agent URLs may point at loopback, private, link-local, unspecified or multicast
   * addresses. Off by default, so a user cannot make the functions call internal services.
   * Local stacks and tests, whose agents listen on 127.0.0.1, set it to `true`.
   */
  BERTH_ALLOW_PRIVATE_AGENT_URLS: z
    .enum(["true", "false"], "must be true or false")
    .default("false")
    .transform((value) => value === "true"),
});
export type FunctionEnv = z.infer<typeof FunctionEnv>;

/**
 * Parses the environment once at cold start. The error names every missing or invalid
 * variable but never prints a value, since several of them are secrets.
 */
export function parseFunctionEnv(source: Record<string, string | undefined>): FunctionEnv {
  const result = FunctionEnv.safeParse(source);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
    throw new Error(`invalid function environment: ${problems.join("; ")}`);
  }
  return result.data;
}
