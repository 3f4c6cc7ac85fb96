"""An asyncio TCP client: asyncio_echo_client.py HOST PORT NBYTES. It writes NBYTES while it
reads the echo, half-closes, and prints what came back: its length, whether it is what it
sent, and the peer's address."""

import asyncio
import os
import sys


async def main():
    reader, writer = await asyncio.open_connection(sys.argv[1], int(sys.argv[2]))
    blob = os.urandom(int(sys.argv[3]))

    async def send():
        writer.write(blob)
        await writer.drain()
        writer.write_eof()

    sending = asyncio.create_task(send())
    got = bytearray()
    while data := await reader.read(65536):
        got += data
    await sending
    print(len(got), got == blob, *writer.get_extra_info("peername"), flush=True)
    writer.close()


asyncio.run(main())
