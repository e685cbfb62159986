"""The web console under /admin/: server-rendered pages, plain forms, no script. Controllers parse
the form, call one service and render; `html` holds the page frame and the escaping helpers,
`auth` the session cookie, CSRF and login throttling."""
