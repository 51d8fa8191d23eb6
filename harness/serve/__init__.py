"""The benchmark as a service: a Ray Serve app (FastAPI ingress) over the run store.

    harness serve                                  # 127.0.0.1:8000 on a local Ray
    serve run serve/config.yaml                    # the same app through Ray Serve's own CLI

Modules, one job each:
    models.py    request and response bodies (pydantic; they make the OpenAPI schema at /docs)
    auth.py      bearer tokens from HARNESS_API_TOKENS, the loopback rule
    driver.py    RunDriver, the detached Ray actor that runs one `harness.run()`
    service.py   RunService: validation, start/cancel/resume, reads from the store, artifacts
    app.py       the FastAPI routes and error bodies, the Serve deployment, `start()`, `serve_http()`
    life.py      the watchdog and clean shutdown of a `harness serve` process (harness/cli_serve.py)

`harness.Client` (harness/client.py) is the SDK that talks to it.
"""
