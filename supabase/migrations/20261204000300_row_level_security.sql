-- Row level security and table grants. Owners may read their own rows through the Data API;
-- nobody writes through it. Writes go through the security definer functions in berth_private,
-- which the edge functions call with the database owner's connection.

-- Schemas -------------------------------------------------------------------------------------

revoke all on schema berth_private from public, anon, authenticated;
grant usage on schema berth_private to service_role;

-- Supabase's default privileges grant anon, authenticated and service_role everything on new
-- objects in public. Start every Berth table from nothing and grant back only reads.
revoke all on table public.toolboxes, public.tool_instances, public.instance_events, public.reconcile_runs
  from public, anon, authenticated, service_role;
revoke all on sequence public.instance_events_id_seq from public, anon, authenticated, service_role;

revoke all on all tables in schema berth_private from public, anon, authenticated, service_role;

grant select on table public.toolboxes, public.tool_instances, public.instance_events to authenticated;
grant select on table public.toolboxes, public.tool_instances, public.instance_events, public.reconcile_runs
  to service_role;

-- Row level security --------------------------------------------------------------------------

alter table public.toolboxes enable row level security;
alter table public.tool_instances enable row level security;
alter table public.instance_events enable row level security;
alter table public.reconcile_runs enable row level security;
alter table berth_private.instance_status_transitions enable row level security;
alter table berth_private.reason_codes enable row level security;
alter table berth_private.idempotency_keys enable row level security;

-- `(select auth.uid())` is evaluated once per statement instead of once per row.
create policy toolboxes_select_own on public.toolboxes
  for select to authenticated
  using (owner_id = (select auth.uid()));

create policy tool_instances_select_own on public.tool_instances
  for select to authenticated
  using (owner_id = (select auth.uid()));

create policy instance_events_select_own on public.instance_events
  for select to authenticated
  using (owner_id = (select auth.uid()));

-- reconcile_runs and the berth_private tables have no policies on purpose: only roles that
-- bypass row level security (the database owner, service_role) can read them.
