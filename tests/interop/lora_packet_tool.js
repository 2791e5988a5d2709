#!/usr/bin/env node
// Bridge from the Python test suite to lora-packet, an independent LoRaWAN implementation.
//
// Reads one JSON array of requests on stdin and writes one JSON array of answers (same order)
// on stdout, so a single node process serves a whole batch of cases.
//
// Request kinds:
//   {"op": "open", "phy": HEX, "nwk_s_key": HEX, "app_s_key": HEX, "fcnt_msb": N}
//     -> fromWire + verifyMIC + decrypt; fcnt_msb is the high 16 bits of the 32-bit counter.
//   {"op": "build", "mtype": N, "dev_addr": HEX (big-endian), "fcnt": N (32-bit),
//    "adr": B, "adr_ack_req": B, "ack": B, "fpending": B, "fopts": HEX, "fport": N | null,
//    "payload": HEX, "nwk_s_key": HEX, "app_s_key": HEX}
//     -> fromFields -> {"phy": HEX}
// A request that makes lora-packet throw answers {"error": MESSAGE} instead.
"use strict";

const lora_packet = require("lora-packet");

// lora-packet appends these two bytes as-is after the little-endian low half of FCnt in B0
// and A_i, so they are the high half in little-endian order.
function fcntMsbBytes(msb) {
  const buf = Buffer.alloc(2);
  buf.writeUInt16LE(msb, 0);
  return buf;
}

function open(req) {
  const packet = lora_packet.fromWire(Buffer.from(req.phy, "hex"));
  const nwk = Buffer.from(req.nwk_s_key, "hex");
  const app = Buffer.from(req.app_s_key, "hex");
  const msb = fcntMsbBytes(req.fcnt_msb || 0);
  const buffers = packet.getBuffers();
  return {
    mtype: packet.MHDR[0] >> 5,
    dir: packet.getDir(),
    dev_addr: buffers.DevAddr.toString("hex"),
    fcnt16: packet.getFCnt(),
    adr: packet.getFCtrlADR(),
    adr_ack_req: packet.getFCtrlADRACKReq(),
    ack: packet.getFCtrlACK(),
    fpending: packet.getFCtrlFPending(),
    fopts: buffers.FOpts.toString("hex"),
    fport: packet.getFPort(),
    frm_payload: buffers.FRMPayload.toString("hex"),
    mic: buffers.MIC.toString("hex"),
    mic_ok: lora_packet.verifyMIC(packet, nwk, undefined, msb),
    plaintext: lora_packet.decrypt(packet, app, nwk, msb).toString("hex"),
  };
}

function build(req) {
  const nwk = Buffer.from(req.nwk_s_key, "hex");
  const app = Buffer.from(req.app_s_key, "hex");
  const msb = fcntMsbBytes(Math.floor(req.fcnt / 0x10000));
  const fields = {
    MType: req.mtype,
    DevAddr: Buffer.from(req.dev_addr, "hex"),
    FCtrl: {
      ADR: req.adr,
      ADRACKReq: req.adr_ack_req,
      ACK: req.ack,
      FPending: req.fpending,
    },
    // fromFields takes only the 16 bits on air; the high half goes in as FCntMSBytes.
    FCnt: req.fcnt % 0x10000,
    FOpts: Buffer.from(req.fopts, "hex"),
    payload: Buffer.from(req.payload, "hex"),
  };
  if (req.fport !== null) {
    fields.FPort = req.fport;
  }
  const packet = lora_packet.fromFields(fields, app, nwk, undefined, msb);
  if (packet.getFPort() === null) {
    // fromFields computes the MIC only for frames with a port; a bare header frame is
    // still MIC'd on air, so compute it the way the library would.
    lora_packet.recalculateMIC(packet, nwk, undefined, msb);
  }
  return { phy: packet.getPHYPayload().toString("hex") };
}

function answer(req) {
  try {
    if (req.op === "open") return open(req);
    if (req.op === "build") return build(req);
    return { error: `unknown op ${JSON.stringify(req.op)}` };
  } catch (err) {
    return { error: String(err && err.message ? err.message : err) };
  }
}

const chunks = [];
process.stdin.on("data", (chunk) => chunks.push(chunk));
process.stdin.on("end", () => {
  const requests = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  process.stdout.write(JSON.stringify(requests.map(answer)));
});
