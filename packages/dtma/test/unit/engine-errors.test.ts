import { describe, expect, it } from "vitest";
import { classifyEngineError } from "../../src/engine/errors.ts";

function modemError(statusCode: number, message: string) {
  return Object.assign(new Error(`(HTTP code ${statusCode}) ${message}`), { statusCode, json: { message } });
}

describe("classifyEngineError", () => {
  it.each([
    ["docker name conflict", modemError(409, 'Conflict. The container name "/berth-x" is already in use by container "abc".'), "name_conflict"],
    ["podman name conflict", modemError(500, 'container create: creating container storage: the container name "berth-x" is already in use by abc.'), "name_conflict"],
    ["docker port taken", modemError(500, "driver failed programming external connectivity: Bind for 127.0.0.1:41000 failed: port is already allocated"), "port_in_use"],
    ["podman port taken", modemError(500, "cannot listen on the TCP port: listen tcp4 127.0.0.1:41000: bind: address already in use"), "port_in_use"],
    ["missing container", modemError(404, "no such container"), "not_found"],
    ["missing image on create", modemError(404, "No such image: localhost/x:1"), "image_not_found"],
    ["other conflict", modemError(409, "You cannot remove a running container"), "failed"],
    ["server error", modemError(500, "something broke"), "failed"],
  ])("classifies %s", (_name, error, kind) => {
    expect(classifyEngineError(error).kind).toBe(kind);
  });

  it.each([["ENOENT"], ["ECONNREFUSED"], ["EACCES"]])("classifies socket error %s as unavailable", (code) => {
    const error = Object.assign(new Error(`connect ${code} /var/run/docker.sock`), { code });

    expect(classifyEngineError(error).kind).toBe("unavailable");
  });
});
