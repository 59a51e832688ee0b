-- Building blocks of the write functions: error raising with stable SQLSTATEs, row locking with
-- version and lease checks, and the event context that the status event trigger reads.
-- None of these is callable by an API role. The write functions use them as the owner.

-- Errors --------------------------------------------------------------------------------------

-- Turns a check or not-null violation into SQLSTATE 22023 that names the column(s) of the
-- constraint, so callers can answer invalid_request without parsing messages. The comment on
-- the constraint, which states the rule, becomes the HINT.
create function berth_private.raise_invalid_value(p_table text, p_constraint text, p_column text default null)
returns void
language plpgsql
set search_path = ''
as $$
declare
  columns text := p_column;
  rule text;
begin
  select pg_catalog.obj_description(c.oid, 'pg_constraint') into rule
  from pg_catalog.pg_constraint as c
  where c.conname = p_constraint and c.conrelid = pg_catalog.to_regclass(p_table);

  if columns is null then
    select string_agg(a.attname, ', ' order by a.attnum) into columns
    from pg_catalog.pg_constraint as c
    join pg_catalog.pg_attribute as a on a.attrelid = c.conrelid and a.attnum = any (c.conkey)
    where c.conname = p_constraint
      and c.conrelid = pg_catalog.to_regclass(p_table);
  end if;

  raise exception 'invalid value for %: violates %', coalesce(columns, 'an argument'), coalesce(p_constraint, 'not null')
    using errcode = '22023',
          detail = format('column=%s constraint=%s', columns, p_constraint),
          hint = coalesce(rule, ''),
          table = pg_catalog.split_part(p_table, '.', 2),
          column = coalesce(pg_catalog.split_part(columns, ', ', 1), ''),
          constraint = coalesce(p_constraint, '');
end;
$$;

comment on function berth_private.raise_invalid_value(text, text, text) is
  'Raises SQLSTATE 22023 naming the column(s) behind a violated constraint (in the message, DETAIL and the COLUMN field). Internal to the write functions.';
revoke all on function berth_private.raise_invalid_value(text, text, text) from public, anon, authenticated, service_role;

create function berth_private.raise_instance_not_found(p_instance_id uuid)
returns void
language plpgsql
set search_path = ''
as $$
begin
  raise exception 'instance % not found', p_instance_id
    using errcode = 'BT006', detail = format('instance_id=%s', p_instance_id);
end;
$$;

comment on function berth_private.raise_instance_not_found(uuid) is
  'Raises SQLSTATE BT006 for an unknown instance id. Internal to the write functions.';
revoke all on function berth_private.raise_instance_not_found(uuid) from public, anon, authenticated, service_role;

create function berth_private.check_reason_code(p_reason_code text)
returns void
language plpgsql
stable
set search_path = ''
as $$
begin
  if p_reason_code is not null
     and not exists (select 1 from berth_private.reason_codes where code = p_reason_code) then
    raise exception 'invalid reason code %: not one of berth_private.reason_codes', p_reason_code
      using errcode = '22023', table = 'tool_instances', column = 'status_reason_code',
            detail = 'column=status_reason_code';
  end if;
end;
$$;

comment on function berth_private.check_reason_code(text) is
  'Raises SQLSTATE 22023 when a reason code is not in berth_private.reason_codes. Internal to the write functions.';
revoke all on function berth_private.check_reason_code(text) from public, anon, authenticated, service_role;

-- Locking -------------------------------------------------------------------------------------

-- Every guarded write first locks the row, then checks, then updates, so no other writer can
-- slip in between the check and the update.
create function berth_private.lock_instance(p_instance_id uuid)
returns public.tool_instances
language plpgsql
set search_path = ''
as $$
declare
  locked public.tool_instances;
begin
  select * into locked from public.tool_instances where id = p_instance_id for update;
  if not found then
    perform berth_private.raise_instance_not_found(p_instance_id);
  end if;
  return locked;
end;
$$;

comment on function berth_private.lock_instance(uuid) is
  'Locks an instance row for update and returns it. Raises BT006 when it does not exist. Internal to the write functions.';
revoke all on function berth_private.lock_instance(uuid) from public, anon, authenticated, service_role;

create function berth_private.lock_live_instance(p_instance_id uuid)
returns public.tool_instances
language plpgsql
set search_path = ''
as $$
declare
  locked public.tool_instances := berth_private.lock_instance(p_instance_id);
begin
  if locked.status = 'removed' then
    raise exception 'instance % is removed and cannot change', p_instance_id
      using errcode = 'BT012', detail = format('instance_id=%s', p_instance_id);
  end if;
  return locked;
end;
$$;

comment on function berth_private.lock_live_instance(uuid) is
  'Locks an instance that is not removed. Raises BT006 when missing and BT012 when removed. Internal to the write functions.';
revoke all on function berth_private.lock_live_instance(uuid) from public, anon, authenticated, service_role;

create function berth_private.lock_instance_at_version(p_instance_id uuid, p_expected_version bigint)
returns public.tool_instances
language plpgsql
set search_path = ''
as $$
declare
  locked public.tool_instances := berth_private.lock_live_instance(p_instance_id);
begin
  if locked.version is distinct from p_expected_version then
    raise exception 'instance % is at version %, not the expected version %', p_instance_id, locked.version, p_expected_version
      using errcode = 'BT002',
            detail = format('instance_id=%s current_version=%s expected_version=%s', p_instance_id, locked.version, p_expected_version),
            hint = 'Read the instance again and retry with its current version.';
  end if;
  return locked;
end;
$$;

comment on function berth_private.lock_instance_at_version(uuid, bigint) is
  'Locks a live instance and checks that it is still at the version the caller read. Raises BT002 otherwise. Internal to the write functions.';
revoke all on function berth_private.lock_instance_at_version(uuid, bigint) from public, anon, authenticated, service_role;

create function berth_private.lock_leased_instance(p_instance_id uuid, p_lease_nonce uuid)
returns public.tool_instances
language plpgsql
set search_path = ''
as $$
declare
  locked public.tool_instances := berth_private.lock_instance(p_instance_id);
begin
  -- The database clock decides expiry, so callers on hosts with skewed clocks agree.
  if p_lease_nonce is null
     or locked.lease_nonce is distinct from p_lease_nonce
     or locked.lease_expires_at <= pg_catalog.clock_timestamp() then
    raise exception 'lease on instance % is not held with the given nonce (it expired or was taken over)', p_instance_id
      using errcode = 'BT004',
            detail = format('instance_id=%s lease_holder=%s lease_expires_at=%s', p_instance_id, locked.lease_holder, locked.lease_expires_at),
            hint = 'Claim the lease again before writing.';
  end if;
  return locked;
end;
$$;

comment on function berth_private.lock_leased_instance(uuid, uuid) is
  'Locks an instance and checks that the given lease nonce is current and unexpired by the database clock. Raises BT004 otherwise. Internal to the write functions.';
revoke all on function berth_private.lock_leased_instance(uuid, uuid) from public, anon, authenticated, service_role;

-- Event context -------------------------------------------------------------------------------

-- The status event trigger reads the actor and extra details from these transaction-local
-- settings. Write functions set them right before their update and clear them right after, so
-- they never leak into a later statement of the same transaction.
create function berth_private.set_event_context(p_actor text, p_details jsonb default null)
returns void
language plpgsql
set search_path = ''
as $$
begin
  if p_actor is null or not (p_actor = any (pg_catalog.enum_range(null::public.event_actor)::text[])) then
    raise exception 'invalid actor %: expected one of %', coalesce(p_actor, 'null'), pg_catalog.enum_range(null::public.event_actor)
      using errcode = '22023', table = 'instance_events', column = 'actor', detail = 'column=actor';
  end if;
  if p_details is not null and pg_catalog.jsonb_typeof(p_details) <> 'object' then
    raise exception 'invalid event details: expected a JSON object'
      using errcode = '22023', table = 'instance_events', column = 'details', detail = 'column=details';
  end if;

  perform pg_catalog.set_config('berth.actor', p_actor, true);
  perform pg_catalog.set_config('berth.event_details', coalesce(p_details, '{}'::jsonb)::text, true);
end;
$$;

comment on function berth_private.set_event_context(text, jsonb) is
  'Declares the actor and extra details for status events written by the next update in this transaction. Internal to the write functions.';
revoke all on function berth_private.set_event_context(text, jsonb) from public, anon, authenticated, service_role;

create function berth_private.clear_event_context()
returns void
language sql
set search_path = ''
as $$
  select pg_catalog.set_config('berth.actor', '', true), pg_catalog.set_config('berth.event_details', '', true);
$$;

comment on function berth_private.clear_event_context() is
  'Clears the event context set by set_event_context. Internal to the write functions.';
revoke all on function berth_private.clear_event_context() from public, anon, authenticated, service_role;
