// Asserting on coded errors: the code is the contract, the message is for people.
import assert from 'node:assert/strict'
import { WeftError } from '../../src/errors.js'

export async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof WeftError, `expected a WeftError, got ${String(err)}`)
    assert.equal(err.code, code, err.message)
    return true
  })
}
