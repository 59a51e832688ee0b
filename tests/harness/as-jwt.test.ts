import { beforeAll, describe, expect, test } from "vitest";
import { mintAnonKey, mintServiceRoleKey, mintUserJwt } from "../../stack/jwt.ts";
import { asJwt, createUser, useTestDatabase } from "../support/db.ts";

const getDb = useTestDatabase();

describe("asJwt", () => {
  let alice: string;
  let bob: string;

  // The table is created here rather than by a migration so the harness is proven on its own:
  // roles, auth.uid() and the claims setting must work before any Berth policy can.
  beforeAll(async () => {
    const { sql } = getDb();
    alice = await createUser(sql);
    bob = await createUser(sql);
    await sql.unsafe(`
      create table public.notes (id serial primary key, owner_id uuid not null, body text not null);
      alter table public.notes enable row level security;
      create policy notes_owner_select on public.notes for select to authenticated using (owner_id = (select auth.uid()));
      grant select on public.notes to anon, authenticated;
    `);
    await sql`insert into public.notes (owner_id, body) values (${alice}, 'alice note'), (${bob}, 'bob note')`;
  });

  test("policy filters rows per user", async () => {
    const { sql } = getDb();

    const aliceRows = await asJwt(sql, await mintUserJwt(alice), (tx) => tx`select body from public.notes`);
    const bobRows = await asJwt(sql, await mintUserJwt(bob), (tx) => tx`select body from public.notes`);

    expect(aliceRows.map((row) => row.body)).toEqual(["alice note"]);
    expect(bobRows.map((row) => row.body)).toEqual(["bob note"]);
  });

  test("anon sees no rows", async () => {
    const rows = await asJwt(getDb().sql, await mintAnonKey(), (tx) => tx`select body from public.notes`);

    expect(rows).toHaveLength(0);
  });

  test("service role bypasses RLS", async () => {
    const rows = await asJwt(getDb().sql, await mintServiceRoleKey(), (tx) => tx`select body from public.notes order by id`);

    expect(rows.map((row) => row.body)).toEqual(["alice note", "bob note"]);
  });

  test("claims helpers read the token", async () => {
    const [row] = await asJwt(getDb().sql, await mintUserJwt(alice, "alice@example.test"), (tx) =>
      tx`select auth.uid() as uid, auth.role() as role, auth.jwt() ->> 'email' as email, current_user as db_role`,
    );

    expect(row).toEqual({ uid: alice, role: "authenticated", email: "alice@example.test", db_role: "authenticated" });
  });

  test("role switch ends with the transaction", async () => {
    const { sql } = getDb();
    await asJwt(sql, await mintUserJwt(alice), (tx) => tx`select 1`);

    const [row] = await sql`select current_user as db_role, auth.uid() as uid`;

    expect(row?.db_role).not.toBe("authenticated");
    expect(row?.uid).toBeNull();
  });
});
