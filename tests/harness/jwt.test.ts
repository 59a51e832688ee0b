import { describe, expect, test } from "vitest";
import { mintAnonKey, mintServiceRoleKey, mintUserJwt, signJwt, verifyJwt } from "../../stack/jwt.ts";

describe("jwt helpers", () => {
  test("user token carries sub and role", async () => {
    const claims = await verifyJwt(await mintUserJwt("0b5a3c2e-1111-4222-8333-444455556666"));

    expect(claims.sub).toBe("0b5a3c2e-1111-4222-8333-444455556666");
    expect(claims.role).toBe("authenticated");
  });

  test("api keys carry their role", async () => {
    expect((await verifyJwt(await mintAnonKey())).role).toBe("anon");
    expect((await verifyJwt(await mintServiceRoleKey())).role).toBe("service_role");
  });

  test("expired token is rejected", async () => {
    const token = await mintUserJwt("0b5a3c2e-1111-4222-8333-444455556666", undefined, { expiresInSeconds: -60 });

    await expect(verifyJwt(token)).rejects.toThrow(/exp/);
  });

  test("token signed with another secret is rejected", async () => {
    const token = await mintAnonKey({ secret: "another-secret-that-is-also-at-least-32-chars" });

    await expect(verifyJwt(token)).rejects.toThrow(/signature/);
  });

  test("unknown role is rejected", async () => {
    await expect(verifyJwt(await signJwt({ role: "postgres" }))).rejects.toThrow(/role/);
  });
});
