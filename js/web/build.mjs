// Build the holder's page into an output directory (default: clearing/api/static):
//   index.html        the page, with Subresource-Integrity hashes of its two assets
//   assets/app.js     js/web/src/main.ts and the SDK, bundled and minified by esbuild
//   assets/app.css    the stylesheet, minified
//   assets/app.js.LEGAL.txt  the licence comments esbuild extracted from the bundled packages
// The output is a pure function of the sources and the locked esbuild version: no time,
// no absolute path, no randomness, so `scripts/build-web --check` can rebuild it byte for byte.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..", "..");
const out = resolve(process.argv[2] ?? join(root, "clearing", "api", "static"));
const serviceUrl = process.env.QEV_WEB_SERVICE_URL ?? "";

const sri = (bytes) => `sha384-${createHash("sha384").update(bytes).digest("base64")}`;

const common = {
  absWorkingDir: root,
  bundle: true,
  minify: true,
  write: false,
  charset: "utf8",
  legalComments: "external",
  logLevel: "warning",
};

const js = await build({
  ...common,
  entryPoints: ["js/web/src/main.ts"],
  outfile: "assets/app.js",
  format: "esm",
  platform: "browser",
  target: ["es2022", "chrome111", "firefox115", "safari16"],
  define: { "process.env.NODE_ENV": '"production"' },
  tsconfig: "js/web/tsconfig.json",
});
const css = await build({
  ...common,
  entryPoints: ["js/web/src/app.css"],
  outfile: "assets/app.css",
});

const files = new Map();
for (const f of [...js.outputFiles, ...css.outputFiles]) {
  const name = f.path.slice(root.length + 1).replaceAll("\\", "/");
  if (name.endsWith(".LEGAL.txt") && f.contents.length === 0) continue;
  files.set(name, Buffer.from(f.contents));
}
const appJs = files.get("assets/app.js");
const appCss = files.get("assets/app.css");
if (!appJs || !appCss) throw new Error("esbuild produced no assets/app.js or assets/app.css");

const escape = (s) => s.replaceAll("&", "&amp;").replaceAll('"', "&quot;").replaceAll("<", "&lt;");
const html = readFileSync(join(here, "src", "index.html"), "utf8")
  .replace("{{SERVICE_URL}}", escape(serviceUrl))
  .replace("{{APP_JS_SRI}}", sri(appJs))
  .replace("{{APP_CSS_SRI}}", sri(appCss));
if (html.includes("{{")) throw new Error("index.html has an unfilled placeholder");
files.set("index.html", Buffer.from(html, "utf8"));

rmSync(out, { recursive: true, force: true });
for (const [name, bytes] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) {
  mkdirSync(dirname(join(out, name)), { recursive: true });
  writeFileSync(join(out, name), bytes);
}
process.stdout.write([...files.keys()].sort().map((n) => `${n} ${files.get(n).length}`).join("\n") + "\n");
