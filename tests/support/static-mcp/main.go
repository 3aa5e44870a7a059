// A static MCP server for the catalog's static-binary tests: built with CGO_ENABLED=0 into an OCI image the
// tests push to a registry of their own. Tools: `echo` (its message back) and `fetch` (an HTTPS GET of a URL
// through HTTPS_PROXY, trusting SSL_CERT_FILE, with `Authorization: Token $GIG_PLACEHOLDER`; the answer's body).
package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
)

type request struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params struct {
		Name      string            `json:"name"`
		Arguments map[string]string `json:"arguments"`
	} `json:"params"`
}

func text(s string, isError bool) map[string]interface{} {
	return map[string]interface{}{"content": []interface{}{map[string]string{"type": "text", "text": s}}, "isError": isError}
}

func main() {
	out := json.NewEncoder(os.Stdout)
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	for in.Scan() {
		var req request
		if json.Unmarshal(in.Bytes(), &req) != nil || len(req.ID) == 0 {
			continue
		}
		var result interface{}
		switch req.Method {
		case "initialize":
			result = map[string]interface{}{"protocolVersion": "2025-06-18", "capabilities": map[string]interface{}{"tools": map[string]interface{}{}},
				"serverInfo": map[string]string{"name": "static-mcp", "version": "1.0.0"}}
		case "ping":
			result = map[string]interface{}{}
		case "tools/list":
			schema := func(p string) map[string]interface{} {
				return map[string]interface{}{"type": "object", "properties": map[string]interface{}{p: map[string]string{"type": "string"}}, "required": []string{p}}
			}
			result = map[string]interface{}{"tools": []interface{}{
				map[string]interface{}{"name": "echo", "description": "Returns its message.", "inputSchema": schema("message")},
				map[string]interface{}{"name": "fetch", "description": "GETs a URL with the credential.", "inputSchema": schema("url")},
			}}
		case "tools/call":
			switch req.Params.Name {
			case "echo":
				result = text(req.Params.Arguments["message"], false)
			case "fetch":
				r, _ := http.NewRequest("GET", req.Params.Arguments["url"], nil)
				r.Header.Set("Authorization", "Token "+os.Getenv("GIG_PLACEHOLDER"))
				resp, err := http.DefaultClient.Do(r)
				if err != nil {
					result = text(err.Error(), true)
					break
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				result = text(string(body), resp.StatusCode >= 400)
			default:
				out.Encode(map[string]interface{}{"jsonrpc": "2.0", "id": req.ID, "error": map[string]interface{}{"code": -32602, "message": "unknown tool"}})
				continue
			}
		default:
			out.Encode(map[string]interface{}{"jsonrpc": "2.0", "id": req.ID, "error": map[string]interface{}{"code": -32601, "message": "method not found"}})
			continue
		}
		out.Encode(map[string]interface{}{"jsonrpc": "2.0", "id": req.ID, "result": result})
	}
}
