package domain

// Command is what every command of every aggregate is: it names itself. The name is the
// command's identity outside Go (metrics and logs, route names, OpenAPI operation ids,
// the steps of a keyed request), so that nothing derives it from the Go type's spelling.
type Command interface {
	// CommandName is the command's name, as its type is called: "ConfirmOrder".
	CommandName() string
}
