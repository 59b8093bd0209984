# Seed 000's FastAPI app (shared/seeds/000), as the article has it, for `deno task bench:seed`.
# Changed only where a benchmark needs it: the broker's URL, the queue and exchange names, and the
# log level come from the environment (SEED_AMQP_URL, SEED_QUEUE, SEED_LOG_LEVEL).
from fastapi import FastAPI, Request, Response
import asyncio
import logging
import os
from rmq import PikaClient
import threading

logging.basicConfig(level=os.environ.get("SEED_LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s: %(name)s - %(message)s")
logger = logging.getLogger(__name__)

AMQP_URL = os.environ.get("SEED_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672")
QUEUE = os.environ.get("SEED_QUEUE", "test.queue")

app = FastAPI()


def start_background_loop(loop: asyncio.AbstractEventLoop) -> None:
    # inspired from https://gist.github.com/dmfigol/3e7d5b84a16d076df02baa9f53271058
    asyncio.set_event_loop(loop)
    loop.run_forever()


@app.on_event("startup")
async def start_rmq():
    # start producer
    app.rmq_producer = PikaClient(queue_name=QUEUE,
                                  exchange_name=f"{QUEUE}.exchange",
                                  conn_str=AMQP_URL)
    await app.rmq_producer.start_producer()

    # start consumer in other thread
    app.rmq_consumer = PikaClient(queue_name=QUEUE,
                                  exchange_name=f"{QUEUE}.exchange",
                                  conn_str=AMQP_URL)

    app.consumer_loop = asyncio.new_event_loop()
    tloop = threading.Thread(target=start_background_loop, args=(app.consumer_loop,), daemon=True)
    tloop.start()

    _ = asyncio.run_coroutine_threadsafe(app.rmq_consumer.start_consumer(), app.consumer_loop)


@app.on_event("shutdown")
async def shutdown_rmq():
    await app.rmq_producer.disconnect()
    await app.rmq_consumer.disconnect()

    app.consumer_loop.stop()


@app.get("/")
def root(response: Response):
    response.status_code = 200
    logger.info("hit root endpoint")
    return {"status_code": 200, "message": "Hello!"}


@app.get("/send-message")
async def send_message(request: Request, response: Response):
    message = "Hello from RMQ producer!"
    response.status_code = 202
    logger.info("message sent")
    await request.app.rmq_producer.publish_message(message)
    return {"status_code": 202, "message": "Your message has been sent."}
