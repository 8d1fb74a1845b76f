// A channel's client in Node.js 20, written from the gateway's /docs (the OpenAPI document) and docs/ alone:
// no code of the project. tests/e2e/test_node_channel.py runs it in two steps around a worker's drain:
//   node channel.mjs upload BASE_URL STATE_FILE VECTORS_DIR   -> signs (checked against the vectors), uploads
//   node channel.mjs follow BASE_URL STATE_FILE               -> reads the change feed, resumes, checks receipts
// It prints what it saw as one JSON line, and exits non-zero (an assertion) on anything the docs did not say.
import crypto from "node:crypto";
import fs from "node:fs";
import assert from "node:assert/strict";

const [step, base, stateFile, vectors] = process.argv.slice(2);
const CLIENT = process.env.CHANNEL_ID, SECRET = process.env.CHANNEL_SECRET;

const sha256hex = (bytes) => crypto.createHash("sha256").update(bytes).digest("hex");

// X-Signature: hex HMAC-SHA256(secret, method \n path?query \n timestamp \n nonce \n hex SHA-256(body)).
function sign(secret, method, pathAndQuery, timestamp, nonce, body) {
  const canonical = [method.toUpperCase(), pathAndQuery, timestamp, nonce, sha256hex(body)].join("\n");
  return crypto.createHmac("sha256", Buffer.from(secret, "utf8")).update(canonical, "utf8").digest("hex");
}

async function call(method, pathAndQuery, document, extra = {}, signal = undefined) {
  const body = document === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(document), "utf8");
  const timestamp = String(Math.floor(Date.now() / 1000)), nonce = crypto.randomBytes(16).toString("hex");
  const headers = {
    "X-Client-Id": CLIENT, "X-Timestamp": timestamp, "X-Nonce": nonce,
    "X-Signature": sign(SECRET, method, pathAndQuery, timestamp, nonce, body), ...extra,
  };
  if (document !== undefined) headers["Content-Type"] ??= "application/json";
  const resp = await fetch(base + pathAndQuery, { method, headers, body: document === undefined ? undefined : body, signal });
  const text = await resp.text();
  return { status: resp.status, headers: resp.headers, json: text ? JSON.parse(text) : null };
}

// Object keys in Unicode code point order (docs/hashing.md): not JavaScript's UTF-16 default.
function byCodePoint(a, b) {
  const x = [...a].map((c) => c.codePointAt(0)), y = [...b].map((c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}
function canonical(value) {
  if (Array.isArray(value)) return "[" + value.map(canonical).join(",") + "]";
  if (value !== null && typeof value === "object")
    return "{" + Object.keys(value).sort(byCodePoint).map((k) => JSON.stringify(k) + ":" + canonical(value[k])).join(",") + "}";
  return JSON.stringify(value);
}

function checkVectors() {
  const signing = JSON.parse(fs.readFileSync(`${vectors}/signing.json`, "utf8"));
  for (const c of signing.cases)
    assert.equal(sign(c.secret, c.method, c.path_and_query, c.timestamp, c.nonce, Buffer.from(c.body_base64, "base64")), c.signature, c.name);
  const feed = JSON.parse(fs.readFileSync(`${vectors}/feed.json`, "utf8"));
  for (const c of feed.canonical_json) assert.equal(canonical(c.object), c.text, c.name);
  let prev = "0".repeat(64);
  for (const b of feed.chain) {
    assert.equal(sha256hex(Buffer.from([prev, ...b.entries.map(canonical)].join("\n"), "utf8")), b.sha256);
    prev = b.sha256;
  }
  return signing.cases.length;
}

// What the document says: reason codes of a rejected result, and the problem codes with their statuses.
async function documented() {
  const doc = await (await fetch(base + "/openapi.json")).json();
  const reasons = new Set(doc.components.schemas.Rejected.properties.reason.enum);
  const problems = new Map(doc.info["x-problem-codes"].map((p) => [p.code, p.status]));
  return { reasons, problems };
}

const digits = (n) => Array.from({ length: n }, () => crypto.randomInt(10)).join("");
function sellerTaxId() {  // GB 32100-2015: 91 + division 340104 + organisation code + check character
  const chars = "0123456789ABCDEFGHJKLMNPQRTUWXY", weights = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
  const first = "91340104" + Array.from({ length: 9 }, () => chars[crypto.randomInt(31)]).join("");
  const sum = [...first].reduce((s, c, i) => s + chars.indexOf(c) * weights[i], 0);
  return first + chars[(31 - (sum % 31)) % 31];
}
function invoice(ending, extra = {}) {
  const who = "node-" + digits(9);
  return {
    number: "26341" + digits(12) + (ending ?? String(crypto.randomInt(990)).padStart(3, "0")),
    issue_date: "2026-03-01", amount: "128.50", seller_tax_id: sellerTaxId(), buyer_name: "王磊", category: "catering",
    user: { id: who, device_id: "d-" + who, real_name: "王磊" }, ...extra,
  };
}

async function upload() {
  const signatures = checkVectors();
  const { reasons, problems } = await documented();
  let start = "";
  for (let page; (page = (await call("GET", `/v1/events?limit=1000${start ? "&after=" + start : ""}`)).json).events.length; ) start = page.next;
  const far = invoice(undefined, { user: { id: "node-far-" + digits(6), device_id: "d-far", location: { lat: 39.9, lon: 116.4 } } });
  const wanted = { plain: invoice(), notFound: invoice("999"), otherTotal: invoice("998"), reversed: invoice("997"), held: far };
  const broken = [
    invoice(undefined, { amount: "1e3" }),
    invoice(undefined, { user: { id: "u", device_id: "d", real_nme: "王磊" } }),
    invoice(undefined, { number: "25341" + digits(15) }),
    invoice(undefined, { issue_date: "2026-02-30" }),
  ];
  const answer = await call("POST", "/v1/invoices", { invoices: [...Object.values(wanted), ...broken] });
  assert.equal(answer.status, 202);
  assert.ok(answer.headers.get("ratelimit") && answer.headers.get("x-request-id"));
  const results = answer.json.results, keys = {}, receipts = {};
  Object.keys(wanted).forEach((name, i) => {
    assert.equal(results[i].status, "accepted", name);
    keys[name] = results[i].key;
    receipts[name] = results[i].receipt;
  });
  const rejections = results.slice(Object.keys(wanted).length).map((r) => r.reason);
  for (const r of rejections) assert.ok(reasons.has(r), `rejection ${r} is not in the documented table`);
  const refusals = [
    await call("GET", "/v1/invoices/26349999999999999995"),
    await call("POST", "/v1/invoices", { invoice: [] }),
    await call("POST", "/v1/invoices", { invoices: [] }),
    await call("POST", "/v1/invoices", { invoices: [invoice()] }, { "Content-Type": "text/plain" }),
    await call("GET", "/v1/feed"),
    await fetch(base + "/v1/events", { headers: { "X-Client-Id": CLIENT, "X-Timestamp": "1", "X-Nonce": "x".repeat(16), "X-Signature": "0".repeat(64) } })
      .then(async (r) => ({ status: r.status, json: await r.json() })),
  ];
  const codes = refusals.map((r) => {
    assert.equal(problems.get(r.json.code), r.status, `${r.json.code} answered ${r.status}, documented ${problems.get(r.json.code)}`);
    return `${r.status} ${r.json.code}`;
  });
  fs.writeFileSync(stateFile, JSON.stringify({ start, keys, receipts }));
  console.log(JSON.stringify({ signatures, rejections, codes }));
}

async function follow() {
  const { start, keys, receipts } = JSON.parse(fs.readFileSync(stateFile, "utf8"));
  // A long poll dropped half way (a disconnect), then resumed from the stored cursor: nothing lost.
  const dropped = new AbortController();
  setTimeout(() => dropped.abort(), 100);
  await call("GET", `/v1/events?after=${start}&limit=1&wait=20`, undefined, {}, dropped.signal).catch(() => null);
  const events = [];
  let after = start;
  for (let page; (page = (await call("GET", `/v1/events?after=${after}&limit=2&wait=1`)).json).events.length; ) {
    events.push(...page.events);
    after = page.next;
  }
  const name = Object.fromEntries(Object.entries(keys).map(([n, k]) => [k, n]));
  const seen = {};
  for (const e of events.filter((e) => e.key in name)) (seen[name[e.key]] ??= []).push(e.reason ? `${e.status}:${e.reason}` : e.status);
  assert.deepEqual(seen, {
    plain: ["verified", "eligible"],
    notFound: ["ineligible:not_found_at_tax_authority"],
    otherTotal: ["verified", "ineligible:amount_mismatch"],
    reversed: ["verified", "reversed:reversed_at_verification"],
    held: ["verified", "held:upload_far_from_city"],
  });
  // Receipts, offline: the key of the receipt's kid from GET /v1/keys, a Merkle path, Ed25519.
  const jwks = (await call("GET", "/v1/keys")).json;
  let verified = 0;
  for (const [n, receipt] of Object.entries(receipts)) {
    const [v, kid, at, signature, path] = receipt.split(".");
    assert.equal(v, "v2");
    const jwk = jwks.keys.find((k) => k.kid === kid);
    const steps = Buffer.from(path, "base64url");
    let node = crypto.createHash("sha256").update(Buffer.concat([Buffer.from([0]), Buffer.from(keys[n], "utf8")])).digest();
    for (let i = 0; i < steps.length; i += 33) {
      const partner = steps.subarray(i + 1, i + 33);
      const pair = steps[i] === 0 ? [partner, node] : [node, partner];
      node = crypto.createHash("sha256").update(Buffer.concat([Buffer.from([1]), ...pair])).digest();
    }
    const text = ["prize-invoice-receipt v2", kid, CLIENT, at, node.toString("hex")].join("\n");
    const key = crypto.createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: jwk.x }, format: "jwk" });
    assert.ok(crypto.verify(null, Buffer.from(text, "utf8"), key, Buffer.from(signature, "base64url")), n);
    assert.ok(!crypto.verify(null, Buffer.from(text.replace(CLIENT, CLIENT + "-2"), "utf8"), key, Buffer.from(signature, "base64url")));
    verified++;
  }
  console.log(JSON.stringify({ events: events.length, seen, verified }));
}

await (step === "upload" ? upload() : follow());
