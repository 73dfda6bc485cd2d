package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// bashCompletion is urfave/cli's bash_autocomplete script: it asks the
// binary itself (--generate-bash-completion) for the candidates.
const bashCompletion = `_shipper_complete() {
  local cur opts
  COMPREPLY=()
  cur="${COMP_WORDS[COMP_CWORD]}"
  if [[ "$cur" == "-"* ]]; then
    opts=$("${COMP_WORDS[@]:0:$COMP_CWORD}" "${cur}" --generate-bash-completion 2>/dev/null)
  else
    opts=$("${COMP_WORDS[@]:0:$COMP_CWORD}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "${opts}" -- "${cur}"))
  return 0
}
complete -o bashdefault -o default -o nospace -F _shipper_complete shipper
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:         "completion",
		Usage:        "print a bash completion script",
		UsageText:    "shipper completion bash\n\nExample:\n   source <(shipper completion bash)",
		OnUsageError: onUsageError,
		Action: func(c *cli.Context) error {
			if sh := c.Args().First(); sh != "bash" {
				return usageErrorf("completion %q: only bash is supported", sh)
			}
			_, err := fmt.Fprint(c.App.Writer, bashCompletion)
			return err
		},
	}
}
