-- Write functions for toolboxes, reconciler bookkeeping and idempotent create requests, called
-- by the edge functions and the reconciler. All are security definer with an empty search_path
-- and executable by service_role only.

-- Helpers -------------------------------------------------------------------------------------

create function berth_private.lock_toolbox(p_toolbox_id uuid)
returns public.toolboxes
language plpgsql
set search_path = ''
as $$
declare
  locked public.toolboxes;
begin
  select * into locked from public.toolboxes where id = p_toolbox_id for update;
  if not found then
    raise exception 'toolbox % not found', p_toolbox_id
      using errcode = 'BT007', detail = format('toolbox_id=%s', p_toolbox_id);
  end if;
  return locked;
end;
$$;

comment on function berth_private.lock_toolbox(uuid) is
  'Locks a toolbox row for update and returns it. Raises BT007 when it does not exist. Internal to the toolbox functions.';
revoke all on function berth_private.lock_toolbox(uuid) from public, anon, authenticated, service_role;

create function berth_private.lock_open_toolbox(p_toolbox_id uuid)
returns public.toolboxes
language plpgsql
set search_path = ''
as $$
declare
  locked public.toolboxes := berth_private.lock_toolbox(p_toolbox_id);
begin
  if locked.status = 'decommissioned' then
    raise exception 'toolbox % (%) is decommissioned', locked.id, locked.name
      using errcode = 'BT009', detail = format('toolbox_id=%s status=%s', locked.id, locked.status);
  end if;
  return locked;
end;
$$;

comment on function berth_private.lock_open_toolbox(uuid) is
  'Locks a toolbox that is not decommissioned. Raises BT007 when missing and BT009 when decommissioned. Internal to the toolbox functions.';
revoke all on function berth_private.lock_open_toolbox(uuid) from public, anon, authenticated, service_role;

-- Register ------------------------------------------------------------------------------------

create function berth_private.create_toolbox(
  p_owner_id uuid,
  p_name text,
  p_agent_url text,
  p_agent_port integer default 30000,
  p_port_range_start integer default 30001,
  p_port_range_end integer default 30999
)
returns public.toolboxes
language plpgsql
security definer
set search_path = ''
as $$
declare
  created public.toolboxes;
  violated text;
begin
  insert into public.toolboxes (owner_id, name, agent_url, agent_port, port_range_start, port_range_end)
  values (p_owner_id, p_name, p_agent_url, p_agent_port, p_port_range_start, p_port_range_end)
  returning * into created;
  return created;
exception
  when unique_violation then
    raise exception 'toolbox name % is already used by this owner', p_name
      using errcode = 'BT008', table = 'toolboxes', column = 'name', detail = 'column=name';
  when check_violation then
    get stacked diagnostics violated = constraint_name;
    perform berth_private.raise_invalid_value('public.toolboxes', violated);
  when not_null_violation then
    get stacked diagnostics violated = column_name;
    perform berth_private.raise_invalid_value('public.toolboxes', null, violated);
  when foreign_key_violation then
    perform berth_private.raise_invalid_value('public.toolboxes', 'toolboxes_owner_id_fkey', 'owner_id');
end;
$$;

comment on function berth_private.create_toolbox(uuid, text, text, integer, integer, integer) is
  'Registers a toolbox for an owner in status provisioning. Raises 22023 naming the column for invalid values and BT008 for a name the owner already uses. Callable by service_role.';
revoke all on function berth_private.create_toolbox(uuid, text, text, integer, integer, integer) from public, anon, authenticated;
grant execute on function berth_private.create_toolbox(uuid, text, text, integer, integer, integer) to service_role;

create function berth_private.rotate_toolbox_token(p_toolbox_id uuid)
returns public.toolboxes
language plpgsql
security definer
set search_path = ''
as $$
declare
  updated public.toolboxes;
begin
  perform berth_private.lock_open_toolbox(p_toolbox_id);
  update public.toolboxes set token_version = token_version + 1
  where id = p_toolbox_id
  returning * into updated;
  return updated;
end;
$$;

comment on function berth_private.rotate_toolbox_token(uuid) is
  'Bumps the token version of a toolbox, which revokes the agent token derived from the old one. Callable by service_role.';
revoke all on function berth_private.rotate_toolbox_token(uuid) from public, anon, authenticated;
grant execute on function berth_private.rotate_toolbox_token(uuid) to service_role;

-- Status --------------------------------------------------------------------------------------

create function berth_private.set_toolbox_status(p_toolbox_id uuid, p_status text)
returns public.toolboxes
language plpgsql
security definer
set search_path = ''
as $$
declare
  updated public.toolboxes;
begin
  -- unreachable comes from record_toolbox_failure and decommissioned from decommission_toolbox,
  -- which check their own preconditions.
  if p_status is null or p_status not in ('active', 'draining') then
    raise exception 'invalid toolbox status %: expected active or draining', coalesce(p_status, 'null')
      using errcode = '22023', table = 'toolboxes', column = 'status', detail = 'column=status';
  end if;

  perform berth_private.lock_open_toolbox(p_toolbox_id);
  update public.toolboxes set status = p_status::public.toolbox_status
  where id = p_toolbox_id
  returning * into updated;
  if updated.id is null then
    select * into updated from public.toolboxes where id = p_toolbox_id;
  end if;
  return updated;
end;
$$;

comment on function berth_private.set_toolbox_status(uuid, text) is
  'Sets a toolbox active or draining (draining accepts no new instances). Raises BT009 for a decommissioned toolbox. Callable by service_role.';
revoke all on function berth_private.set_toolbox_status(uuid, text) from public, anon, authenticated;
grant execute on function berth_private.set_toolbox_status(uuid, text) to service_role;

create function berth_private.decommission_toolbox(p_toolbox_id uuid)
returns public.toolboxes
language plpgsql
security definer
set search_path = ''
as $$
declare
  box public.toolboxes := berth_private.lock_toolbox(p_toolbox_id);
  live_count integer;
  updated public.toolboxes;
begin
  if box.status = 'decommissioned' then
    return box;
  end if;

  select count(*) into live_count from public.tool_instances
  where toolbox_id = p_toolbox_id and status <> 'removed';
  if live_count > 0 then
    raise exception 'toolbox % (%) still has % live instance(s); remove them first', box.id, box.name, live_count
      using errcode = 'BT010', detail = format('toolbox_id=%s live_instances=%s', box.id, live_count);
  end if;

  update public.toolboxes
  set status = 'decommissioned', reconcile_lease_holder = null, reconcile_lease_expires_at = null
  where id = p_toolbox_id
  returning * into updated;
  return updated;
end;
$$;

comment on function berth_private.decommission_toolbox(uuid) is
  'Marks a toolbox decommissioned (final). Raises BT010 while it has instances that are not removed. Repeating it is a no-op. Callable by service_role.';
revoke all on function berth_private.decommission_toolbox(uuid) from public, anon, authenticated;
grant execute on function berth_private.decommission_toolbox(uuid) to service_role;

-- Contact -------------------------------------------------------------------------------------

create function berth_private.record_toolbox_heartbeat(p_toolbox_id uuid, p_agent_version text default null)
returns public.toolboxes
language plpgsql
security definer
set search_path = ''
as $$
declare
  updated public.toolboxes;
begin
  perform berth_private.lock_open_toolbox(p_toolbox_id);
  update public.toolboxes
  set last_heartbeat_at = pg_catalog.clock_timestamp(),
      consecutive_failures = 0,
      last_failure = null,
      agent_version = coalesce(p_agent_version, agent_version),
      status = case when status in ('provisioning', 'unreachable') then 'active'::public.toolbox_status else status end
  where id = p_toolbox_id
  returning * into updated;
  return updated;
end;
$$;

comment on function berth_private.record_toolbox_heartbeat(uuid, text) is
  'Records a successful contact with an agent: resets the failure counter and makes a provisioning or unreachable toolbox active. Instances left unknown are resolved from the next observation. Callable by service_role.';
revoke all on function berth_private.record_toolbox_heartbeat(uuid, text) from public, anon, authenticated;
grant execute on function berth_private.record_toolbox_heartbeat(uuid, text) to service_role;

create function berth_private.mark_toolbox_instances_unknown(p_toolbox_id uuid, p_actor text, p_message text)
returns integer
language plpgsql
set search_path = ''
as $$
declare
  marked integer;
begin
  perform berth_private.set_event_context(p_actor);
  -- pending has no container yet and removed is final, so neither becomes unknown.
  update public.tool_instances
  set status = 'unknown',
      status_reason_code = 'HostUnreachable',
      status_reason = p_message
  where toolbox_id = p_toolbox_id
    and status not in ('pending', 'unknown', 'removed');
  get diagnostics marked = row_count;
  perform berth_private.clear_event_context();
  return marked;
end;
$$;

comment on function berth_private.mark_toolbox_instances_unknown(uuid, text, text) is
  'Sets every instance of a toolbox that may have a container to unknown with reason HostUnreachable, never to stopped. Internal to record_toolbox_failure.';
revoke all on function berth_private.mark_toolbox_instances_unknown(uuid, text, text) from public, anon, authenticated, service_role;

create function berth_private.record_toolbox_failure(
  p_toolbox_id uuid,
  p_error text,
  p_threshold integer default 3,
  p_actor text default 'reconciler'
)
returns public.toolboxes
language plpgsql
security definer
set search_path = ''
as $$
declare
  updated public.toolboxes;
begin
  if p_threshold is null or p_threshold < 1 then
    raise exception 'invalid failure threshold %: expected at least 1', coalesce(p_threshold::text, 'null')
      using errcode = '22023', table = 'toolboxes', column = 'consecutive_failures', detail = 'column=consecutive_failures';
  end if;

  perform berth_private.lock_open_toolbox(p_toolbox_id);
  update public.toolboxes
  set consecutive_failures = consecutive_failures + 1,
      last_failure = left(p_error, 1000),
      status = case
        when consecutive_failures + 1 >= p_threshold and status in ('provisioning', 'active')
          then 'unreachable'::public.toolbox_status
        else status
      end
  where id = p_toolbox_id
  returning * into updated;

  if updated.consecutive_failures >= p_threshold then
    perform berth_private.mark_toolbox_instances_unknown(
      p_toolbox_id, p_actor,
      format('Agent unreachable after %s failed contacts: %s', updated.consecutive_failures, left(p_error, 500))
    );
  end if;
  return updated;
end;
$$;

comment on function berth_private.record_toolbox_failure(uuid, text, integer, text) is
  'Counts a failed heartbeat or poll. At p_threshold consecutive failures the toolbox becomes unreachable and its instances unknown (HostUnreachable). Callable by service_role.';
revoke all on function berth_private.record_toolbox_failure(uuid, text, integer, text) from public, anon, authenticated;
grant execute on function berth_private.record_toolbox_failure(uuid, text, integer, text) to service_role;

-- Reconciler ----------------------------------------------------------------------------------

create function berth_private.claim_toolboxes_for_reconcile(p_holder text, p_batch_size integer, p_ttl_seconds integer)
returns setof public.toolboxes
language plpgsql
security definer
set search_path = ''
as $$
begin
  if p_holder is null or length(p_holder) not between 1 and 200 then
    raise exception 'invalid reconcile lease holder: expected 1 to 200 characters'
      using errcode = '22023', table = 'toolboxes', column = 'reconcile_lease_holder', detail = 'column=reconcile_lease_holder';
  end if;
  if p_batch_size is null or p_batch_size not between 1 and 1000
     or p_ttl_seconds is null or p_ttl_seconds not between 1 and 3600 then
    raise exception 'invalid batch size % or ttl % seconds: expected 1 to 1000 and 1 to 3600',
        coalesce(p_batch_size::text, 'null'), coalesce(p_ttl_seconds::text, 'null')
      using errcode = '22023', table = 'toolboxes', column = 'reconcile_lease_expires_at', detail = 'column=reconcile_lease_expires_at';
  end if;

  -- SKIP LOCKED lets concurrent passes take disjoint batches instead of waiting on each other.
  return query
  with batch as (
    select t.id
    from public.toolboxes as t
    where t.status <> 'decommissioned'
      and (t.reconcile_lease_expires_at is null or t.reconcile_lease_expires_at <= pg_catalog.clock_timestamp())
    order by t.last_reconciled_at nulls first, t.id
    limit p_batch_size
    for update skip locked
  )
  update public.toolboxes as t
  set reconcile_lease_holder = p_holder,
      reconcile_lease_expires_at = pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => p_ttl_seconds)
  from batch
  where t.id = batch.id
  returning t.*;
end;
$$;

comment on function berth_private.claim_toolboxes_for_reconcile(text, integer, integer) is
  'Leases up to p_batch_size toolboxes that no other pass holds, least recently reconciled first, for p_ttl_seconds by the database clock. Callable by service_role.';
revoke all on function berth_private.claim_toolboxes_for_reconcile(text, integer, integer) from public, anon, authenticated;
grant execute on function berth_private.claim_toolboxes_for_reconcile(text, integer, integer) to service_role;

create function berth_private.finish_toolbox_reconcile(p_toolbox_id uuid, p_holder text)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.toolboxes
  set last_reconciled_at = pg_catalog.clock_timestamp(),
      reconcile_lease_holder = null,
      reconcile_lease_expires_at = null
  where id = p_toolbox_id and reconcile_lease_holder = p_holder;
  return found;
end;
$$;

comment on function berth_private.finish_toolbox_reconcile(uuid, text) is
  'Records that p_holder finished reconciling a toolbox and releases its lease. Returns false, writing nothing, when p_holder no longer holds it. Callable by service_role.';
revoke all on function berth_private.finish_toolbox_reconcile(uuid, text) from public, anon, authenticated;
grant execute on function berth_private.finish_toolbox_reconcile(uuid, text) to service_role;

create function berth_private.start_reconcile_run(p_holder text)
returns public.reconcile_runs
language plpgsql
security definer
set search_path = ''
as $$
declare
  created public.reconcile_runs;
begin
  if p_holder is null or length(p_holder) not between 1 and 200 then
    raise exception 'invalid reconcile run holder: expected 1 to 200 characters'
      using errcode = '22023', table = 'reconcile_runs', column = 'holder', detail = 'column=holder';
  end if;
  insert into public.reconcile_runs (holder, started_at)
  values (p_holder, pg_catalog.clock_timestamp())
  returning * into created;
  return created;
end;
$$;

comment on function berth_private.start_reconcile_run(text) is
  'Opens a reconcile_runs row in status running for one reconciler pass. Callable by service_role.';
revoke all on function berth_private.start_reconcile_run(text) from public, anon, authenticated;
grant execute on function berth_private.start_reconcile_run(text) to service_role;

create function berth_private.finish_reconcile_run(
  p_run_id uuid,
  p_status text,
  p_toolboxes_checked integer,
  p_instances_checked integer,
  p_drift_found integer,
  p_repairs_made integer,
  p_failures integer,
  p_errors jsonb default '[]'::jsonb
)
returns public.reconcile_runs
language plpgsql
security definer
set search_path = ''
as $$
declare
  finished public.reconcile_runs;
  violated text;
begin
  if p_status is null or p_status not in ('succeeded', 'partial', 'failed') then
    raise exception 'invalid reconcile run status %: expected succeeded, partial or failed', coalesce(p_status, 'null')
      using errcode = '22023', table = 'reconcile_runs', column = 'status', detail = 'column=status';
  end if;

  update public.reconcile_runs
  set status = p_status,
      finished_at = pg_catalog.clock_timestamp(),
      duration_ms = greatest(0, floor(extract(epoch from pg_catalog.clock_timestamp() - started_at) * 1000))::integer,
      toolboxes_checked = p_toolboxes_checked,
      instances_checked = p_instances_checked,
      drift_found = p_drift_found,
      repairs_made = p_repairs_made,
      failures = p_failures,
      errors = coalesce(p_errors, '[]'::jsonb)
  where id = p_run_id and status = 'running'
  returning * into finished;

  if finished.id is null then
    raise exception 'reconcile run % not found or already finished', p_run_id
      using errcode = 'BT015', detail = format('run_id=%s', p_run_id);
  end if;
  return finished;
exception
  when check_violation then
    get stacked diagnostics violated = constraint_name;
    perform berth_private.raise_invalid_value('public.reconcile_runs', violated);
  when not_null_violation then
    get stacked diagnostics violated = column_name;
    perform berth_private.raise_invalid_value('public.reconcile_runs', null, violated);
end;
$$;

comment on function berth_private.finish_reconcile_run(uuid, text, integer, integer, integer, integer, integer, jsonb) is
  'Closes a running reconcile_runs row with its counts and errors. The duration_ms comes from the database clock. Raises BT015 for an unknown or finished run. Callable by service_role.';
revoke all on function berth_private.finish_reconcile_run(uuid, text, integer, integer, integer, integer, integer, jsonb) from public, anon, authenticated;
grant execute on function berth_private.finish_reconcile_run(uuid, text, integer, integer, integer, integer, integer, jsonb) to service_role;

-- Idempotency keys ----------------------------------------------------------------------------

create function berth_private.begin_idempotent_request(
  p_owner_id uuid,
  p_key text,
  p_request_hash text,
  p_stale_after_seconds integer default 300
)
returns berth_private.idempotency_keys
language plpgsql
security definer
set search_path = ''
as $$
declare
  entry berth_private.idempotency_keys;
begin
  if p_key is null or length(p_key) not between 1 and 255 then
    raise exception 'invalid idempotency key: expected 1 to 255 characters'
      using errcode = '22023', table = 'idempotency_keys', column = 'key', detail = 'column=key';
  end if;
  if p_request_hash is null or p_request_hash = '' then
    raise exception 'missing request hash for idempotency key %', p_key
      using errcode = '22023', table = 'idempotency_keys', column = 'request_hash', detail = 'column=request_hash';
  end if;

  insert into berth_private.idempotency_keys (owner_id, key, request_hash, created_at)
  values (p_owner_id, p_key, p_request_hash, pg_catalog.clock_timestamp())
  on conflict (owner_id, key) do nothing
  returning * into entry;
  if entry.key is not null then
    return entry;
  end if;

  select * into entry from berth_private.idempotency_keys
  where owner_id = p_owner_id and key = p_key
  for update;

  if entry.request_hash is distinct from p_request_hash then
    raise exception 'idempotency key % was already used for a different request', p_key
      using errcode = 'BT011', detail = format('key=%s', p_key);
  end if;
  if entry.completed_at is not null then
    return entry;
  end if;

  -- A request that never completed (its function crashed) may be retried after a while.
  if entry.created_at <= pg_catalog.clock_timestamp() - pg_catalog.make_interval(secs => p_stale_after_seconds) then
    update berth_private.idempotency_keys set created_at = pg_catalog.clock_timestamp()
    where owner_id = p_owner_id and key = p_key
    returning * into entry;
    return entry;
  end if;

  raise exception 'a request with idempotency key % is still in progress', p_key
    using errcode = 'BT014', detail = format('key=%s', p_key);
end;
$$;

comment on function berth_private.begin_idempotent_request(uuid, text, text, integer) is
  'Starts or replays a create request by Idempotency-Key: returns the key row, whose response is set when the request already completed. Raises BT011 for a key reused with another request hash and BT014 while the first request is in progress. Callable by service_role.';
revoke all on function berth_private.begin_idempotent_request(uuid, text, text, integer) from public, anon, authenticated;
grant execute on function berth_private.begin_idempotent_request(uuid, text, text, integer) to service_role;

create function berth_private.complete_idempotent_request(
  p_owner_id uuid,
  p_key text,
  p_response_status integer,
  p_response jsonb
)
returns berth_private.idempotency_keys
language plpgsql
security definer
set search_path = ''
as $$
declare
  entry berth_private.idempotency_keys;
begin
  update berth_private.idempotency_keys
  set response_status = p_response_status,
      response = p_response,
      completed_at = pg_catalog.clock_timestamp()
  where owner_id = p_owner_id and key = p_key and completed_at is null
  returning * into entry;

  if entry.key is null then
    raise exception 'idempotency key % not found or already completed', p_key
      using errcode = 'BT016', detail = format('key=%s', p_key);
  end if;
  return entry;
exception
  when check_violation then
    perform berth_private.raise_invalid_value('berth_private.idempotency_keys', null, 'response_status');
end;
$$;

comment on function berth_private.complete_idempotent_request(uuid, text, integer, jsonb) is
  'Stores the response of a request begun with begin_idempotent_request so retries replay it. Raises BT016 for an unknown or completed key. Callable by service_role.';
revoke all on function berth_private.complete_idempotent_request(uuid, text, integer, jsonb) from public, anon, authenticated;
grant execute on function berth_private.complete_idempotent_request(uuid, text, integer, jsonb) to service_role;
