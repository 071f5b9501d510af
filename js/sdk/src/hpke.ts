/**
 * RFC 9180 HPKE, base mode, DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20-Poly1305,
 * empty associated data (PROTOCOL 3.4). Ciphertext = enc (32 bytes) || sealed.
 */
import { CipherSuite, HkdfSha256 } from "@hpke/core";
import { Chacha20Poly1305 } from "@hpke/chacha20poly1305";
import { DhkemX25519HkdfSha256 } from "@hpke/dhkem-x25519";
import { ENC_LENGTH, TAG_LENGTH } from "./protocol.js";

export const KEM_ID = 0x0020;
export const KDF_ID = 0x0001;
export const AEAD_ID = 0x0003;

let cached: CipherSuite | undefined;

/** The protocol's one HPKE suite. */
export function suite(): CipherSuite {
  cached ??= new CipherSuite({
    kem: new DhkemX25519HkdfSha256(),
    kdf: new HkdfSha256(),
    aead: new Chacha20Poly1305(),
  });
  return cached;
}

function copy(bytes: Uint8Array): ArrayBuffer {
  return bytes.slice().buffer as ArrayBuffer;
}

/** Encrypt `plaintext` to the auction's raw 32-byte X25519 `publicKey`; returns enc || sealed. */
export async function seal(plaintext: Uint8Array, publicKey: Uint8Array, info: Uint8Array): Promise<Uint8Array> {
  if (publicKey.length !== 32) throw new RangeError(`an X25519 public key is 32 bytes, got ${publicKey.length}`);
  const s = suite();
  const recipientPublicKey = await s.kem.deserializePublicKey(copy(publicKey));
  const { ct, enc } = await s.seal({ recipientPublicKey, info: copy(info) }, copy(plaintext));
  const out = new Uint8Array(enc.byteLength + ct.byteLength);
  out.set(new Uint8Array(enc), 0);
  out.set(new Uint8Array(ct), enc.byteLength);
  return out;
}

/** Decrypt enc || sealed with the auction's raw 32-byte X25519 private key (after the reveal). */
export async function open(ciphertext: Uint8Array, privateKey: Uint8Array, info: Uint8Array): Promise<Uint8Array> {
  if (privateKey.length !== 32) throw new RangeError(`an X25519 private key is 32 bytes, got ${privateKey.length}`);
  if (ciphertext.length < ENC_LENGTH + TAG_LENGTH) throw new RangeError("ciphertext too short");
  const s = suite();
  const recipientKey = await s.kem.importKey("raw", copy(privateKey), false);
  const pt = await s.open(
    { recipientKey, enc: copy(ciphertext.subarray(0, ENC_LENGTH)), info: copy(info) },
    copy(ciphertext.subarray(ENC_LENGTH)),
  );
  return new Uint8Array(pt);
}
