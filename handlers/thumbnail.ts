/**
 * An image upload (seed 001's image processing): reads the PNG it was given as a stream and
 * reports its dimensions, as a thumbnailer would before resizing.
 *
 * @example
 * ```sh
 * curl -X POST localhost:8000/tasks/thumbnail -F image=@cat.png -F label=cat
 * ```
 */

import { type Context, type HandlerConfig, PermanentError } from "warren";

export const config: HandlerConfig = {
  files: { image: { types: ["image/png"], maxSize: "20MiB" } },
  schema: { type: "object", properties: { label: { type: "string" } } },
};

const PNG_SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

export default async function (payload: { label?: string }, ctx: Context) {
  const image = ctx.files.image;
  const head = await firstBytes(image.stream(), 24);
  if (head.length < 24 || PNG_SIGNATURE.some((byte, i) => head[i] !== byte)) {
    throw new PermanentError(`${image.filename} is not a PNG image`);
  }
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const [width, height] = [view.getUint32(16), view.getUint32(20)]; // from the IHDR chunk
  ctx.log.info("{file}: {width}×{height}", { file: image.filename, width, height });
  return {
    label: payload.label ?? null,
    filename: image.filename,
    size: image.size,
    sha256: image.sha256,
    width,
    height,
  };
}

/** The first `count` bytes of a stream (or fewer, if it is shorter); the rest is not fetched. */
async function firstBytes(stream: ReadableStream<Uint8Array>, count: number) {
  const reader = stream.getReader();
  const bytes = new Uint8Array(count);
  let have = 0;
  while (have < count) {
    const { value, done } = await reader.read();
    if (done) break;
    const take = value.subarray(0, count - have);
    bytes.set(take, have);
    have += take.length;
  }
  await reader.cancel();
  return bytes.subarray(0, have);
}
