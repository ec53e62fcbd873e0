import { Effect, Option } from "effect"
import * as dgram from "node:dgram"
import { describe, expect, it } from "vitest"
import * as WakeOnLan from "../src/target/WakeOnLan.ts"

describe("Wake-on-LAN", () => {
  it("reads a MAC in the usual spellings, and refuses anything else", () => {
    const expected = [0xaa, 0xbb, 0xcc, 0x01, 0x02, 0xff]
    for (const text of ["aa:bb:cc:01:02:ff", "AA-BB-CC-01-02-FF", "aabb.cc01.02ff", " aa:BB:cc:01:02:ff "]) {
      expect(Option.map(WakeOnLan.parseMac(text), (mac) => [...mac]), text).toEqual(Option.some(expected))
    }
    for (const text of ["", "aa:bb:cc:01:02", "aa:bb:cc:01:02:ff:00", "aa:bb-cc:01:02:ff", "gg:bb:cc:01:02:ff", "aabbcc0102ff"]) {
      expect(Option.isNone(WakeOnLan.parseMac(text)), text).toBe(true)
    }
    expect(WakeOnLan.formatMac(Option.getOrThrow(WakeOnLan.parseMac("AA-BB-CC-01-02-FF")))).toBe("aa:bb:cc:01:02:ff")
  })

  it("the magic packet: six 0xFF, then the MAC sixteen times", () => {
    const mac = Option.getOrThrow(WakeOnLan.parseMac("01:23:45:67:89:ab"))
    const packet = WakeOnLan.magicPacket(mac)
    expect(packet.length).toBe(102)
    expect([...packet.subarray(0, 6)]).toEqual([255, 255, 255, 255, 255, 255])
    for (let i = 0; i < 16; i++) expect([...packet.subarray(6 + 6 * i, 12 + 6 * i)]).toEqual([...mac])
    expect(Option.map(WakeOnLan.readMagicPacket(packet), WakeOnLan.formatMac)).toEqual(Option.some("01:23:45:67:89:ab"))
    const broken = Uint8Array.from(packet)
    broken[50] = 0
    expect(Option.isNone(WakeOnLan.readMagicPacket(broken))).toBe(true)
  })

  it("sends it as one UDP datagram to the address and port given", async () => {
    const listener = dgram.createSocket("udp4")
    const received = new Promise<Buffer>((resolve) => listener.once("message", (message) => resolve(message)))
    await new Promise<void>((resolve) => listener.bind(0, "127.0.0.1", resolve))
    try {
      const mac = Option.getOrThrow(WakeOnLan.parseMac("de:ad:be:ef:00:01"))
      await Effect.runPromise(WakeOnLan.send(mac, { address: "127.0.0.1", port: listener.address().port }))
      const message = await received
      expect(Option.map(WakeOnLan.readMagicPacket(message), WakeOnLan.formatMac)).toEqual(Option.some("de:ad:be:ef:00:01"))
    } finally {
      listener.close()
    }
  })

  it("a send that cannot go out fails with WakeFailed", async () => {
    const mac = Option.getOrThrow(WakeOnLan.parseMac("de:ad:be:ef:00:01"))
    const exit = await Effect.runPromiseExit(WakeOnLan.send(mac, { address: "127.0.0.1", port: 0 }))
    expect(exit._tag).toBe("Failure")
  })
})
