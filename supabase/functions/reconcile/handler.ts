import { ReconcileRequest } from "@berth/shared";
import type { Authenticator } from "../_shared/auth.ts";
import { ApiError, errorResponse } from "../_shared/errors.ts";
import { json, readJson } from "../_shared/http.ts";
import type { Logger } from "../_shared/log.ts";
import type { ReconcilePass } from "../_shared/reconcile/pass.ts";

export interface ReconcileHandlerDependencies {
  auth: Authenticator;
  pass: ReconcilePass;
  logger: Logger;
}

/**
 * Creates the handler of `POST /functions/v1/reconcile`: one reconciler pass for callers with
 * the service role key (pg_cron through pg_net, operators). A user token gets 403 and a
 * missing one 401. The response is the pass's counts, or `skipped` when another pass holds
 * the run lease.
 */
export function createReconcileHandler(deps: ReconcileHandlerDependencies): (request: Request) => Promise<Response> {
  return async (request) => {
    const log = deps.logger.child({ request_id: crypto.randomUUID(), method: request.method });

    try {
      if (request.method !== "POST") {
        throw new ApiError("method_not_allowed", `${request.method} is not allowed on /reconcile; use POST`);
      }
      await deps.auth.requireService(request);
      const body = await readJson(request, ReconcileRequest);

      log.info("reconcile requested", { source: body.source ?? null });
      return json(200, await deps.pass.run());
    } catch (error) {
      return errorResponse(error, log);
    }
  };
}
