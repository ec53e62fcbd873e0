/**
 * Wake-on-LAN: the magic packet that wakes a sleeping machine whose network card listens for
 * it (6 bytes of 0xFF, then the card's MAC address 16 times), sent as a UDP datagram to a
 * broadcast address (port 9, "discard", by default). The packet says nothing about whether
 * the machine woke: readiness is the target answering `/api/version` (the inventory's probe).
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as dgram from "node:dgram"
import { isIP } from "node:net"

/** Where magic packets go unless a target says otherwise. */
export const defaultBroadcast = "255.255.255.255"
export const defaultPort = 9

/** A MAC address as six bytes. */
export type Mac = Readonly<Uint8Array>

/**
 * `aa:bb:cc:dd:ee:ff`, `AA-BB-CC-DD-EE-FF` or `aabb.ccdd.eeff` (any case): the six bytes,
 * or `None`.
 */
export const parseMac = (text: string): Option.Option<Mac> => {
  const trimmed = text.trim()
  const hex = /^[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}$/i.test(trimmed)
    ? trimmed.replace(/[:-]/g, "")
    : /^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$/i.test(trimmed)
    ? trimmed.replace(/\./g, "")
    : undefined
  if (hex === undefined) return Option.none()
  const bytes = new Uint8Array(6)
  for (let i = 0; i < 6; i++) bytes[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16)
  return Option.some(bytes)
}

/** The MAC as `aa:bb:cc:dd:ee:ff`. */
export const formatMac = (mac: Mac): string => Array.from(mac, (byte) => byte.toString(16).padStart(2, "0")).join(":")

/** The magic packet for `mac`: 102 bytes. */
export const magicPacket = (mac: Mac): Uint8Array => {
  const packet = new Uint8Array(6 + 16 * 6).fill(0xff, 0, 6)
  for (let i = 0; i < 16; i++) packet.set(mac, 6 + 6 * i)
  return packet
}

/** Whether `packet` is a magic packet, and for which MAC. */
export const readMagicPacket = (packet: Uint8Array): Option.Option<Mac> => {
  if (packet.length !== 102 || !packet.subarray(0, 6).every((byte) => byte === 0xff)) return Option.none()
  const mac = packet.subarray(6, 12)
  for (let i = 1; i < 16; i++) {
    const copy = packet.subarray(6 + 6 * i, 12 + 6 * i)
    if (!copy.every((byte, k) => byte === mac[k])) return Option.none()
  }
  return Option.some(Uint8Array.from(mac))
}

export interface WakeAddress {
  /** An IPv4 address (a subnet's broadcast address, or a host's). */
  readonly address: string
  readonly port: number
}

export class WakeFailed extends Data.TaggedError("WakeFailed")<{ readonly message: string }> {}

/** Sends the magic packet for `mac` once, as one UDP datagram with broadcast allowed. */
export const send = (mac: Mac, to: WakeAddress): Effect.Effect<void, WakeFailed> =>
  Effect.async<void, WakeFailed>((resume) => {
    const family = isIP(to.address) === 6 ? "udp6" : "udp4"
    const socket = dgram.createSocket(family)
    let settled = false
    const close = () => {
      try {
        socket.close()
      } catch {
        // already closed
      }
    }
    const done = (error?: unknown) => {
      if (settled) return
      settled = true
      close()
      resume(error === undefined ? Effect.void : Effect.fail(new WakeFailed({ message: String((error as Error)?.message ?? error) })))
    }
    socket.once("error", done)
    socket.bind(0, () => {
      try {
        socket.setBroadcast(true)
        socket.send(magicPacket(mac), to.port, to.address, (error) => done(error ?? undefined))
      } catch (error) {
        done(error)
      }
    })
    return Effect.sync(() => {
      settled = true
      close()
    })
  })
