// Package termcolor colours the verdict words of command output (ok, warn,
// fail) when the output is a terminal. It honours NO_COLOR
// (https://no-color.org: any non-empty value turns colour off), TERM=dumb
// and non-terminal writers (pipes, files), and CLICOLOR_FORCE=1 forces
// colour on (for tests and pagers such as `less -R`).
//
// Only the basic 16-colour SGR codes are used, so the terminal's own palette
// decides the shade: they stay readable on dark and light backgrounds.
package termcolor
