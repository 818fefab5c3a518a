// A real SMTP server for the browser tests, in plain Node: it accepts every
// message, or refuses every recipient with 550 (the mail consumer then parks
// the event as a dead letter). Its mode is switched over HTTP:
//   POST http://127.0.0.1:<control>/mode/refuse | /mode/accept
//   GET  http://127.0.0.1:<control>/count  -> messages accepted so far
"use strict";
const net = require("net");
const http = require("http");

const smtpPort = Number(process.env.E2E_SMTP_PORT || 12525);
const controlPort = Number(process.env.E2E_SMTP_CONTROL_PORT || 12526);
let mode = "accept";
let accepted = 0;

net.createServer((sock) => {
  let data = false;
  let buf = "";
  sock.setEncoding("utf8");
  sock.write("220 e2e ESMTP\r\n");
  sock.on("data", (chunk) => {
    buf += chunk;
    let i;
    while ((i = buf.indexOf("\r\n")) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (data) {
        if (line === ".") { data = false; accepted++; sock.write("250 2.0.0 queued as e2e-" + accepted + "\r\n"); }
        continue;
      }
      const verb = line.slice(0, 4).toUpperCase();
      if (verb === "EHLO" || verb === "HELO") { sock.write("250-e2e\r\n250 8BITMIME\r\n"); }
      else if (verb === "MAIL") { sock.write("250 2.1.0 ok\r\n"); }
      else if (verb === "RCPT") { sock.write(mode === "refuse" ? "550 5.1.1 no such mailbox\r\n" : "250 2.1.5 ok\r\n"); }
      else if (verb === "DATA") { data = true; sock.write("354 go ahead\r\n"); }
      else if (verb === "QUIT") { sock.end("221 bye\r\n"); }
      else if (verb === "RSET" || verb === "NOOP") { sock.write("250 ok\r\n"); }
      else { sock.write("502 not implemented\r\n"); }
    }
  });
  sock.on("error", () => {});
}).listen(smtpPort, "127.0.0.1");

http.createServer((req, res) => {
  const m = req.url.match(/^\/mode\/(accept|refuse)$/);
  if (req.method === "POST" && m) { mode = m[1]; res.end(mode); return; }
  if (req.url === "/count") { res.end(String(accepted)); return; }
  if (req.url === "/") { res.end("ok"); return; }
  res.statusCode = 404; res.end();
}).listen(controlPort, "127.0.0.1");
