// Package apicheck holds the tests that keep procactor's public API honest:
// every exported identifier, struct field, constant and method of the
// library packages is documented, and the types of the protocol between
// processes stay out of it. It has no code of its own.
package apicheck
