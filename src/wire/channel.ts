import { InvalidChannelError } from '../errors/index.js'
import { MAX_CHANNEL_BYTES } from './limits.js'

/**
 * Rejects channel names that PostgreSQL would refuse or, worse, silently truncate: LISTEN only
 * prints a NOTICE for a name over 63 bytes and then listens on the truncated name, so the
 * listener would never be called.
 */
export function assertChannelName(channel: unknown): asserts channel is string {
  if (typeof channel !== 'string') {
    throw new InvalidChannelError(`Channel name must be a string, got ${typeof channel}. Pass the channel name as text.`, {
      channel: String(channel),
    })
  }
  if (channel.length === 0) {
    throw new InvalidChannelError('Channel name is empty. PostgreSQL needs a non-empty channel name.', { channel })
  }
  if (channel.includes('\u0000')) {
    throw new InvalidChannelError(
      `Channel name ${JSON.stringify(channel)} contains a NUL byte, which PostgreSQL cannot store. Remove it.`,
      { channel },
    )
  }
  if (!(channel as string & { isWellFormed(): boolean }).isWellFormed()) {
    throw new InvalidChannelError(
      `Channel name ${JSON.stringify(channel)} contains a lone surrogate (half of a UTF-16 character pair), which has no UTF-8 form. Fix the name.`,
      { channel },
    )
  }
  const bytes = Buffer.byteLength(channel, 'utf8')
  if (bytes > MAX_CHANNEL_BYTES) {
    throw new InvalidChannelError(
      `Channel name "${channel}" is ${bytes} bytes in UTF-8; PostgreSQL allows at most ${MAX_CHANNEL_BYTES} ` +
        'and would silently truncate it, so nothing would ever arrive. Use a shorter name.',
      { channel },
    )
  }
}
