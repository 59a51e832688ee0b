-- Secret environment variables of instances. tool_instances keeps only their names. The values
-- live here, out of reach of every API role. On hosted Supabase, where the Vault extension
-- provides vault.create_secret, the value goes to Vault (encrypted at rest) and this table keeps
-- only the Vault secret id.

create table berth_private.instance_secrets (
  instance_id uuid not null references public.tool_instances (id) on delete cascade,
  name text not null,
  value text,
  vault_secret_id uuid,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),

  primary key (instance_id, name),
  constraint instance_secrets_name_env check (berth_private.is_env_name(name)),
  constraint instance_secrets_one_store check ((value is null) <> (vault_secret_id is null))
);

comment on table berth_private.instance_secrets is
  'Secret values of instances, or their Vault ids when Vault is installed. No API role has any grant. The secret functions read and write it.';

alter table berth_private.instance_secrets enable row level security;
revoke all on table berth_private.instance_secrets from public, anon, authenticated, service_role;

-- Vault ---------------------------------------------------------------------------------------

create function berth_private.vault_available()
returns boolean
language sql
stable
set search_path = ''
as $$
  select pg_catalog.to_regprocedure('vault.create_secret(text, text, text, uuid)') is not null
    and pg_catalog.to_regprocedure('vault.update_secret(uuid, text, text, text, uuid)') is not null
    and pg_catalog.to_regclass('vault.decrypted_secrets') is not null
$$;

comment on function berth_private.vault_available() is
  'Tests whether Supabase Vault is installed, which decides where secret values are stored. Internal to the secret functions.';
revoke all on function berth_private.vault_available() from public, anon, authenticated, service_role;

-- Stores one value. Returns whether anything changed. The caller validates the instance.
create function berth_private.store_instance_secret(p_instance_id uuid, p_name text, p_value text)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
  existing berth_private.instance_secrets;
  stored_value text;
begin
  select * into existing
  from berth_private.instance_secrets
  where instance_id = p_instance_id and name = p_name
  for update;

  if not berth_private.vault_available() then
    if found and existing.value is not distinct from p_value then
      return false;
    end if;
    insert into berth_private.instance_secrets (instance_id, name, value)
    values (p_instance_id, p_name, p_value)
    on conflict (instance_id, name)
      do update set value = excluded.value, vault_secret_id = null, updated_at = now();
    return true;
  end if;

  if found and existing.vault_secret_id is not null then
    select s.decrypted_secret into stored_value from vault.decrypted_secrets as s where s.id = existing.vault_secret_id;
    if stored_value is not distinct from p_value then
      return false;
    end if;
    perform vault.update_secret(existing.vault_secret_id, p_value);
    update berth_private.instance_secrets set updated_at = now()
    where instance_id = p_instance_id and name = p_name;
    return true;
  end if;

  insert into berth_private.instance_secrets (instance_id, name, vault_secret_id)
  values (
    p_instance_id,
    p_name,
    vault.create_secret(p_value, format('berth:instance:%s:%s', p_instance_id, p_name), 'Berth instance secret')
  )
  on conflict (instance_id, name)
    do update set value = null, vault_secret_id = excluded.vault_secret_id, updated_at = now();
  return true;
end;
$$;

comment on function berth_private.store_instance_secret(uuid, text, text) is
  'Stores one secret value for an instance, in Vault when installed, and returns whether it changed. Internal to create_instance and set_instance_secret.';
revoke all on function berth_private.store_instance_secret(uuid, text, text) from public, anon, authenticated, service_role;

-- Removing the values ---------------------------------------------------------------------------

create function berth_private.purge_instance_secrets(p_instance_id uuid, p_names text[] default null)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  vault_ids uuid[];
begin
  with deleted as (
    delete from berth_private.instance_secrets
    where instance_id = p_instance_id and (p_names is null or name = any (p_names))
    returning vault_secret_id
  )
  select array_agg(vault_secret_id) filter (where vault_secret_id is not null) into vault_ids from deleted;

  -- NOTE: deleting from vault.secrets is how Supabase's Vault documentation removes a secret;
  -- it has only run against the stand-in Vault of the tests, not against a hosted project.
  if vault_ids is not null and pg_catalog.to_regclass('vault.secrets') is not null then
    delete from vault.secrets where id = any (vault_ids);
  end if;
end;
$$;

comment on function berth_private.purge_instance_secrets(uuid, text[]) is
  'Deletes stored secret values (all, or the named ones) of an instance, including their Vault entries. Internal to the secret functions and the purge trigger.';
revoke all on function berth_private.purge_instance_secrets(uuid, text[]) from public, anon, authenticated, service_role;

create function berth_private.purge_secrets_of_removed_instance()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform berth_private.purge_instance_secrets(new.id);
  return null;
end;
$$;

comment on function berth_private.purge_secrets_of_removed_instance() is
  'Trigger: deletes the secret values of an instance once it reaches status removed, because no container will need them again.';
revoke all on function berth_private.purge_secrets_of_removed_instance() from public, anon, authenticated, service_role;

create trigger purge_secrets_of_removed_instance
  after update of status on public.tool_instances
  for each row
  when (new.status = 'removed' and old.status is distinct from new.status)
  execute function berth_private.purge_secrets_of_removed_instance();

-- API for the edge functions --------------------------------------------------------------------

create function berth_private.set_instance_secret(p_instance_id uuid, p_name text, p_value text)
returns public.tool_instances
language plpgsql
security definer
set search_path = ''
as $$
declare
  current public.tool_instances;
  updated public.tool_instances;
begin
  if p_name is null or not berth_private.is_env_name(p_name) then
    raise exception 'invalid secret name %: expected an environment variable name like API_KEY', coalesce(p_name, 'null')
      using errcode = '22023', table = 'tool_instances', column = 'secret_names',
            detail = 'column=secret_names';
  end if;
  if p_value is null then
    raise exception 'missing value for secret %', p_name
      using errcode = '22023', table = 'tool_instances', column = 'secret_names',
            detail = 'column=secret_names';
  end if;

  current := berth_private.lock_live_instance(p_instance_id);
  if current.env ? p_name then
    raise exception 'secret name % is already a plain environment variable of instance %', p_name, p_instance_id
      using errcode = '22023', table = 'tool_instances', column = 'secret_names',
            constraint = 'tool_instances_secret_names_not_in_env', detail = 'column=secret_names';
  end if;

  if not berth_private.store_instance_secret(p_instance_id, p_name, p_value) and p_name = any (current.secret_names) then
    return current;
  end if;

  -- A new value reaches the container only when it is recreated, so this is a spec change.
  update public.tool_instances
  set secret_names = case when p_name = any (secret_names) then secret_names else secret_names || p_name end,
      generation = generation + 1,
      spec_generation = generation + 1
  where id = p_instance_id
  returning * into updated;
  return updated;
end;
$$;

comment on function berth_private.set_instance_secret(uuid, text, text) is
  'Sets one secret environment variable of a live instance (adding its name to secret_names) and bumps the spec generation when the value changed. Callable by service_role.';
revoke all on function berth_private.set_instance_secret(uuid, text, text) from public, anon, authenticated;
grant execute on function berth_private.set_instance_secret(uuid, text, text) to service_role;

create function berth_private.delete_instance_secret(p_instance_id uuid, p_name text)
returns public.tool_instances
language plpgsql
security definer
set search_path = ''
as $$
declare
  current public.tool_instances;
  updated public.tool_instances;
begin
  current := berth_private.lock_live_instance(p_instance_id);
  if not (p_name = any (current.secret_names)) then
    return current;
  end if;

  perform berth_private.purge_instance_secrets(p_instance_id, array[p_name]);
  update public.tool_instances
  set secret_names = array_remove(secret_names, p_name),
      generation = generation + 1,
      spec_generation = generation + 1
  where id = p_instance_id
  returning * into updated;
  return updated;
end;
$$;

comment on function berth_private.delete_instance_secret(uuid, text) is
  'Removes one secret environment variable of a live instance and bumps the spec generation. Absent names change nothing. Callable by service_role.';
revoke all on function berth_private.delete_instance_secret(uuid, text) from public, anon, authenticated;
grant execute on function berth_private.delete_instance_secret(uuid, text) to service_role;

create function berth_private.instance_secret_values(p_instance_id uuid)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  plain jsonb;
  from_vault jsonb := '{}'::jsonb;
begin
  select coalesce(jsonb_object_agg(s.name, s.value), '{}'::jsonb) into plain
  from berth_private.instance_secrets as s
  join public.tool_instances as i on i.id = s.instance_id
  where s.instance_id = p_instance_id and s.value is not null and s.name = any (i.secret_names);

  if berth_private.vault_available() then
    select coalesce(jsonb_object_agg(s.name, v.decrypted_secret), '{}'::jsonb) into from_vault
    from berth_private.instance_secrets as s
    join public.tool_instances as i on i.id = s.instance_id
    join vault.decrypted_secrets as v on v.id = s.vault_secret_id
    where s.instance_id = p_instance_id and s.name = any (i.secret_names);
  end if;

  return plain || from_vault;
end;
$$;

comment on function berth_private.instance_secret_values(uuid) is
  'Returns the secret environment variables of an instance as {name: value}, for the edge function that sends the spec to the agent. Never log its result. Callable by service_role.';
revoke all on function berth_private.instance_secret_values(uuid) from public, anon, authenticated;
grant execute on function berth_private.instance_secret_values(uuid) to service_role;
