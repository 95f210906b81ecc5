"""HTTP connection to one database of InfluxDB's v1 API, shared by the writer and the API's reader."""

import httpx
from pydantic import SecretStr


class InfluxHttpClient:
    """A pooled HTTP client for one InfluxDB database, with basic authentication when a user is set."""

    def __init__(
        self,
        url: str,
        database: str,
        username: str | None = None,
        password: SecretStr | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.database = database
        auth = None
        if username:
            auth = (username, password.get_secret_value() if password else "")
        self._client = httpx.AsyncClient(base_url=self.url, auth=auth, timeout=timeout_s)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def ping(self) -> bool:
        """Return True when ``/ping`` responds with 204 within 5 s."""
        try:
            response = await self._client.get("/ping", timeout=5.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 204
