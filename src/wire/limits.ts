/** PostgreSQL identifiers are at most NAMEDATALEN - 1 = 63 bytes; LISTEN silently truncates longer ones. */
export const MAX_CHANNEL_BYTES = 63

/** NOTIFY rejects a payload of 8000 bytes or more ("payload string too long"). */
export const MAX_PAYLOAD_BYTES = 7999
