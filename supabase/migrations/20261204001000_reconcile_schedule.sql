-- Schedules the reconciler: pg_cron calls the reconcile edge function through pg_net, with the
-- project URL and the service role key read from Vault each time the job runs, so neither is
-- stored in the job text. Operators store both once per project:
--   select vault.create_secret('https://<project-ref>.supabase.co', 'berth_project_url');
--   select vault.create_secret('<service role key>', 'berth_service_role_key');
-- Where pg_cron, pg_net or Vault is missing (plain PostgreSQL, or a database other than the
-- one named by cron.database_name) the migration still applies and only reports the reason.

do $$
begin
  begin
    create extension if not exists pg_cron;
  exception when others then
    raise notice 'pg_cron could not be installed (SQLSTATE %: %); the reconciler will not be scheduled', sqlstate, sqlerrm;
  end;

  begin
    create extension if not exists pg_net with schema extensions;
  exception when others then
    raise notice 'pg_net could not be installed (SQLSTATE %: %); the reconciler will not be scheduled', sqlstate, sqlerrm;
  end;
end
$$;

create function berth_private.schedule_reconcile(
  p_schedule text default '* * * * *',
  p_timeout_milliseconds integer default 55000
)
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  command text;
begin
  if pg_catalog.to_regprocedure('cron.schedule(text, text, text)') is null then
    raise notice 'pg_cron is not installed in this database; berth-reconcile is not scheduled';
    return null;
  end if;
  if pg_catalog.to_regprocedure('net.http_post(text, jsonb, jsonb, jsonb, integer)') is null then
    raise notice 'pg_net is not installed; berth-reconcile is not scheduled';
    return null;
  end if;
  if pg_catalog.to_regclass('vault.decrypted_secrets') is null then
    raise notice 'Vault is not installed; berth-reconcile is not scheduled';
    return null;
  end if;
  if p_timeout_milliseconds is null or p_timeout_milliseconds not between 1000 and 600000 then
    raise exception 'invalid timeout % ms: expected 1000 to 600000', coalesce(p_timeout_milliseconds::text, 'null')
      using errcode = '22023';
  end if;

  -- The job text reads the secrets at run time. The timeout stays below the default one-minute
  -- period so a slow pass is cut off before the next one starts.
  command := format($job$
select net.http_post(
  url := rtrim((select decrypted_secret from vault.decrypted_secrets where name = 'berth_project_url'), '/')
         || '/functions/v1/reconcile',
  headers := jsonb_build_object(
    'Content-Type', 'application/json',
    'Authorization', 'Bearer ' || (select decrypted_secret from vault.decrypted_secrets where name = 'berth_service_role_key')
  ),
  body := jsonb_build_object('source', 'pg_cron'),
  timeout_milliseconds := %s
);
$job$, p_timeout_milliseconds);

  -- cron.schedule replaces the command and schedule of an existing job with the same name.
  return cron.schedule('berth-reconcile', p_schedule, command);
end;
$$;

comment on function berth_private.schedule_reconcile(text, integer) is
  'Creates or updates the pg_cron job berth-reconcile that POSTs to <berth_project_url>/functions/v1/reconcile with the service role key from Vault. Returns the job id, or null with a notice when pg_cron, pg_net or Vault is missing. Run by the database owner (migrations, operators).';
revoke all on function berth_private.schedule_reconcile(text, integer) from public, anon, authenticated, service_role;

create function berth_private.unschedule_reconcile()
returns boolean
language plpgsql
set search_path = ''
as $$
begin
  if pg_catalog.to_regclass('cron.job') is null then
    return false;
  end if;
  if not exists (select 1 from cron.job where jobname = 'berth-reconcile') then
    return false;
  end if;
  return cron.unschedule('berth-reconcile');
end;
$$;

comment on function berth_private.unschedule_reconcile() is
  'Removes the berth-reconcile pg_cron job if it exists and returns whether it did. Run by the database owner (operators).';
revoke all on function berth_private.unschedule_reconcile() from public, anon, authenticated, service_role;

select berth_private.schedule_reconcile();
