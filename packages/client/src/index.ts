// TODO: the typed client for the management UI (createBerthClient over supabase-js) is not
// written yet; this entry point exists so the workspace type-checks.
export {};
