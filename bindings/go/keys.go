package serf

// #include <serf.h>
// #include <stdlib.h>
import "C"

import (
	"unsafe"
)

// KeyManager runs cluster-wide keyring operations (`serf keys`), as HashiCorp's KeyManager:
// each is a query to every member, waited for, with per-node results in a KeyResponse.
type KeyManager struct {
	s *Serf
}

// KeyResponse is the outcome of a key operation on the whole cluster (HashiCorp's
// KeyResponse).
type KeyResponse struct {
	// Messages holds per-node error messages, by node name.
	Messages map[string]string
	// NumNodes members were asked, NumResp answered, NumErr reported a failure.
	NumNodes int
	NumResp  int
	NumErr   int
	// Keys (ListKeys only) maps each base64 key to how many nodes hold it.
	Keys map[string]int
	// PrimaryKeys (ListKeys only) maps each primary key to how many nodes use it.
	PrimaryKeys map[string]int
}

// KeyError is returned with the KeyResponse when the operation completed but some members
// reported a failure (Message is HashiCorp's "1/3 nodes reported failure"); the response's
// Messages say which and why.
type KeyError struct {
	Op      string
	Message string
}

// Error reads "serf: OP: MESSAGE".
func (e *KeyError) Error() string { return "serf: " + e.Op + ": " + e.Message }

// KeyManager is the node's key manager (encryption must be on, see Config.Keys).
func (s *Serf) KeyManager() *KeyManager { return &KeyManager{s: s} }

// InstallKey adds a base64 key to every member's keyring.
func (k *KeyManager) InstallKey(key string) (*KeyResponse, error) {
	return k.op(C.SERF_KEY_INSTALL, "install key", &key)
}

// UseKey makes an installed key the primary one everywhere.
func (k *KeyManager) UseKey(key string) (*KeyResponse, error) {
	return k.op(C.SERF_KEY_USE, "use key", &key)
}

// RemoveKey removes a key (not the primary one) from every keyring.
func (k *KeyManager) RemoveKey(key string) (*KeyResponse, error) {
	return k.op(C.SERF_KEY_REMOVE, "remove key", &key)
}

// ListKeys lists the keys every member holds, with how many members hold each.
func (k *KeyManager) ListKeys() (*KeyResponse, error) {
	return k.op(C.SERF_KEY_LIST, "list keys", nil)
}

func (k *KeyManager) op(kind C.uint32_t, name string, key *string) (*KeyResponse, error) {
	var ckey *C.char
	if key != nil {
		c, err := cstr(name, "key", *key)
		if err != nil {
			return nil, err
		}
		defer C.free(unsafe.Pointer(c))
		ckey = c
	}
	var resp *KeyResponse
	var failure string
	err := k.s.do(name, func(p *C.serf_t) C.enum_serf_status {
		var r *C.serf_key_result_t
		st := C.serf_key_operation(p, kind, ckey, &r)
		if st == C.SERF_OK {
			resp = keyResponseFromC(r)
			if msg := C.serf_key_result_error(r); msg != nil {
				failure = C.GoString(msg)
			}
			C.serf_key_result_free(r)
		}
		return st
	})
	if err != nil {
		return nil, err
	}
	if failure != "" {
		return resp, &KeyError{Op: name, Message: failure}
	}
	return resp, nil
}

func keyResponseFromC(r *C.serf_key_result_t) *KeyResponse {
	resp := &KeyResponse{
		Messages:    make(map[string]string),
		NumNodes:    int(C.serf_key_result_num_nodes(r)),
		NumResp:     int(C.serf_key_result_num_responses(r)),
		NumErr:      int(C.serf_key_result_num_errors(r)),
		Keys:        make(map[string]int),
		PrimaryKeys: make(map[string]int),
	}
	for i := C.size_t(0); i < C.serf_key_result_message_count(r); i++ {
		var node, msg *C.char
		if C.serf_key_result_message_at(r, i, &node, &msg) {
			resp.Messages[C.GoString(node)] = C.GoString(msg)
		}
	}
	for i := C.size_t(0); i < C.serf_key_result_key_count(r); i++ {
		var key *C.char
		var count C.size_t
		if C.serf_key_result_key_at(r, i, &key, &count) {
			resp.Keys[C.GoString(key)] = int(count)
		}
	}
	for i := C.size_t(0); i < C.serf_key_result_primary_key_count(r); i++ {
		var key *C.char
		var count C.size_t
		if C.serf_key_result_primary_key_at(r, i, &key, &count) {
			resp.PrimaryKeys[C.GoString(key)] = int(count)
		}
	}
	return resp
}
