package main

// Components linked into the binary; each registers itself with
// agent.RegisterComponent from init.
import (
	_ "github.com/netsight/netsight/store"
	_ "github.com/netsight/netsight/web/dashboard"
)
