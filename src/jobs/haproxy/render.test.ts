import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { haproxyConfigSchema } from "./config.js";
import { configVersion, renderHaproxyCfg, serversOf } from "./render.js";
import { parseWith } from "../../lib/validate.js";
import { parseOldWorkers } from "./manager.js";

const config = haproxyConfigSchema.parse({
  frontends: [{ name: "www", port: 8000, backend: "web" }],
  backends: [{ name: "web", link: "web", port: 8080, health_check: { path: "/healthz" } }],
});

describe("haproxy config", () => {
  it("renders frontends on the node's address and one server per linked instance, checked", () => {
    const servers = serversOf(
      config,
      {
        web: {
          group: "web",
          instances: [
            { id: "i-0", index: 0, address: "127.1.1.1" },
            { id: "i-3", index: 3, address: "127.2.1.2" },
          ],
        },
      },
      new Set(["i-3"]),
    );
    const text = renderHaproxyCfg({
      config,
      address: "127.1.1.9",
      member: "m0",
      servers,
      statsSocket: "/run/s",
    });
    assert.match(
      text,
      /frontend www\n {2}mode http\n {2}bind 127\.1\.1\.9:8000\n {2}http-response set-header X-Zonal-LB m0/,
    );
    assert.match(text, /option httpchk GET \/healthz/);
    assert.match(text, /default-server check inter 500 fall 2 rise 2/);
    assert.match(text, /server web-0 127\.1\.1\.1:8080\n {2}server web-3 127\.2\.1\.2:8080 disabled\n/);
  });

  it("has a version that the two nodes share, and that changes with the servers", () => {
    const one = { web: [{ name: "web-0", address: "127.1.1.1", port: 8080 }] };
    assert.equal(configVersion(config, one), configVersion(config, structuredClone(one)));
    assert.notEqual(configVersion(config, one), configVersion(config, { web: [] }));
  });

  it("refuses a frontend naming no backend, a backend with both link and servers, a linked one without port", () => {
    const r = haproxyConfigSchema.safeParse({
      frontends: [{ name: "www", port: 8000, backend: "nope" }],
      backends: [
        { name: "web", link: "web", servers: [{ address: "127.0.0.1", port: 1 }] },
        { name: "api", link: "api" },
      ],
    });
    assert.equal(r.success, false);
    const messages = r.error!.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("\n");
    assert.match(messages, /frontends\.0\.backend: no backend "nope"/);
    assert.match(messages, /give either link .* or servers, not both/);
    assert.match(messages, /backends\.1\.port: a linked backend needs the port/);
  });

  it("refuses a health check path that would add config lines, naming the field", () => {
    const hostile = {
      frontends: [{ name: "www", port: 8000, backend: "web" }],
      backends: [
        {
          name: "web",
          link: "web",
          port: 8080,
          health_check: { path: "/x\n  stats enable\n  stats uri /s" },
        },
      ],
    };
    assert.throws(
      () => parseWith(haproxyConfigSchema, hostile, "haproxy properties"),
      /backends\[0\]\.health_check\.path: expected a path starting with \/ of at most 255 visible ASCII/,
    );
    for (const path of ["/a b", "/a\tb", "/\u0000", "/é", "/a#b", '/a"b', "/a'b", "/a\\b"])
      assert.equal(
        haproxyConfigSchema.safeParse({
          ...hostile,
          backends: [{ ...hostile.backends[0], health_check: { path } }],
        }).success,
        false,
        JSON.stringify(path),
      );
  });

  it("renders every health check path the schema accepts", () => {
    for (let c = 0x21; c <= 0x7e; c++) {
      const path = `/x${String.fromCharCode(c)}y`;
      const parsed = haproxyConfigSchema.safeParse({
        frontends: [{ name: "www", port: 8000, backend: "web" }],
        backends: [{ name: "web", servers: [{ address: "127.0.0.1", port: 80 }], health_check: { path } }],
      });
      if (!parsed.success) continue;
      assert.doesNotThrow(
        () =>
          renderHaproxyCfg({
            config: parsed.data,
            address: "127.1.1.9",
            member: "m0",
            servers: {},
            statsSocket: "/run/s",
          }),
        path,
      );
    }
  });

  it("renders no value that is more than one word, whatever checked it before", () => {
    const render = (
      servers: Record<string, Array<{ name: string; address: string; port: number }>>,
      member = "m0",
    ) => renderHaproxyCfg({ config, address: "127.1.1.9", member, servers, statsSocket: "/run/s" });
    assert.throws(
      () => render({ web: [{ name: "web-0", address: "127.1.1.1\n  server evil 10.0.0.1", port: 80 }] }),
      /server address .* is not one word/,
    );
    assert.throws(
      () => render({ web: [{ name: "a b", address: "127.1.1.1", port: 80 }] }),
      /server name "a b"/,
    );
    assert.throws(() => render({}, "m0\r\nX"), /member/);
    assert.throws(() => render({}, "#"), /member "#"/);
    assert.doesNotThrow(() => render({ web: [{ name: "web-0", address: "127.1.1.1", port: 80 }] }));
  });

  it("counts the workers of earlier configs in the master's show proc", () => {
    const proc = [
      "#<PID>          <type>          <reloads>       <uptime>        <version>",
      "13067           master          3 [failed: 0]   0d00h00m08s     2.6.12-1+deb12u4",
      "# workers",
      "13441           worker          0               0d00h00m01s     2.6.12-1+deb12u4",
      "# old workers",
      "13312           worker          1               0d00h00m03s     2.6.12-1+deb12u4",
      "13300           worker          2               0d00h00m05s     2.6.12-1+deb12u4",
      "# programs",
      "",
    ].join("\n");
    assert.equal(parseOldWorkers(proc), 2);
    assert.equal(parseOldWorkers(proc.replace(/# old workers\n(.*\n){2}/, "")), 0);
  });
});
