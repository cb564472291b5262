import asyncio

from dockyard import keys
from dockyard.state import connect
from dockyard.store import Store


async def test_the_secret_cache_forgets_a_key_deleted_by_another_process(tmp_path, state_backend):
    server = Store.open(tmp_path / "k.db", keys.MIGRATIONS)
    cli = connect(server.target, key_file=server.key_file)
    key = await keys.create(cli, "ci")
    cache = keys.SecretCache(server)
    assert cache(key.access_key_id) == key.secret
    assert cache("DKYDNOPE") is None
    await keys.delete(cli, key.access_key_id)
    follower = asyncio.create_task(server.follow(interval=0.001))
    for _ in range(100):
        if cache(key.access_key_id) is None:
            break
        await asyncio.sleep(0.005)
    follower.cancel()
    assert cache(key.access_key_id) is None
    server.close()
    cli.close()
