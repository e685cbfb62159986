"""LTI 1.3 / LTI Advantage tool (docs/lti.md), on the maintained `pylti1p3next` library.

- `platforms`: the platforms a workspace registered (control database), their keys checked offline.
- `keys`: the tool's own RSA keys in the encrypted keyring (current + previous, rotation, JWKS).
- `store`: the library's login state (nonces, states, launch data) in the control database, so every
  worker process of `serve --workers N` sees it; nonces and states are consumed once.
- `tool`: the library's request, cookie, session and configuration adapters for Litestar.
- `launch`: login, resource-link launch into the player (a normal signed embed URL), deep linking.
- `grades`: Assignment and Grade Services: completion -> a durable outbox -> the platform's lineitem.
- `routes`: `/lti/login`, `/lti/launch`, `/lti/jwks`, `/lti/deep-link` (the HTTP layer).
"""
