/**
 * A notification as listeners receive it. One object per notification per client, shared by every
 * listener on every instance on that client, and frozen so that no listener can change what the
 * next one sees.
 */
export interface Message<Payload = unknown> {
  /** The channel the notification arrived on. */
  readonly channel: string
  /** The payload, decoded: JSON when it parses, the raw text otherwise (pg-ipc's rule). */
  readonly payload: Payload
  /** Backend process id of the sender's connection (compare with `client.processID`). */
  readonly processId: number
  /** The payload exactly as PostgreSQL delivered it (`''` when none was sent). */
  readonly rawPayload: string
}
