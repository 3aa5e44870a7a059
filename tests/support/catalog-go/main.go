// An independent reference for the catalog's canonical JSON: the registry's schema structs (written from
// the format's documentation) marshalled by Go's own encoding/json. It reads a registry converted to JSON
// (one object: {"manifests": [...], "toolspecs": [...]}) on stdin and prints, per manifest,
// "<name>@<version> <Hash> <RuntimeHash>", then "index <sha256 of the index bytes>" for the given
// generated time. The Rust tests compare both with their own.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

type Manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	Name          string       `json:"name"`
	Version       string       `json:"version"`
	Source        Source       `json:"source"`
	Image         Image        `json:"image"`
	Tier          string       `json:"tier"`
	Entitlements  Entitlements `json:"entitlements"`
	Credentials   []Credential `json:"credentials,omitempty"`
	Tools         []Tool       `json:"tools,omitempty"`
	DisplayName   string       `json:"displayName,omitempty"`
	Description   string       `json:"description,omitempty"`
	Category      string       `json:"category,omitempty"`
	Icon          string       `json:"icon,omitempty"`
}

type Source struct {
	Repo    string `json:"repo"`
	Tag     string `json:"tag"`
	Package string `json:"package,omitempty"`
}

type Image struct {
	Ref        string `json:"ref"`
	Digest     string `json:"digest"`
	Entrypoint string `json:"entrypoint"`
	Builder    string `json:"builder,omitempty"`
}

type Entitlements struct {
	Egress []string `json:"egress,omitempty"`
}

type Credential struct {
	ID       string   `json:"id"`
	Type     string   `json:"type"`
	Provider string   `json:"provider"`
	Scopes   []string `json:"scopes,omitempty"`
	Inject   Inject   `json:"inject"`
	Vendor   string   `json:"vendor,omitempty"`
}

type Inject struct {
	Header string `json:"header,omitempty"`
	Format string `json:"format,omitempty"`
	Env    string `json:"env,omitempty"`
}

type Tool struct {
	Name    string `json:"name"`
	Default bool   `json:"default"`
}

type ToolSpec struct {
	SchemaVersion int        `json:"schemaVersion"`
	Name          string     `json:"name"`
	Version       string     `json:"version"`
	BaseURL       string     `json:"baseUrl"`
	Auth          *SpecAuth  `json:"auth,omitempty"`
	Tools         []SpecTool `json:"tools"`
}

type SpecAuth struct {
	Header string `json:"header"`
	Format string `json:"format"`
}

type SpecTool struct {
	Name        string      `json:"name"`
	Description string      `json:"description"`
	Method      string      `json:"method"`
	Path        string      `json:"path"`
	BaseURL     string      `json:"baseUrl,omitempty"`
	Encoding    string      `json:"encoding,omitempty"`
	Params      []SpecParam `json:"params,omitempty"`
}

type SpecParam struct {
	Name        string `json:"name"`
	In          string `json:"in"`
	Type        string `json:"type"`
	Required    bool   `json:"required,omitempty"`
	Description string `json:"description,omitempty"`
}

type IndexServer struct {
	Latest   string               `json:"latest"`
	Versions map[string]*Manifest `json:"versions"`
}

type Index struct {
	SchemaVersion int                    `json:"schemaVersion"`
	Generated     string                 `json:"generated"`
	Servers       map[string]IndexServer `json:"servers"`
	Toolspecs     map[string]ToolSpec    `json:"toolspecs,omitempty"`
}

func hash(v interface{}) string {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

func runtimeHash(m Manifest) string {
	r := m
	r.Image.Digest = ""
	r.DisplayName, r.Description, r.Category, r.Icon = "", "", "", ""
	r.Credentials = append([]Credential(nil), m.Credentials...)
	for i := range r.Credentials {
		r.Credentials[i].Vendor = ""
	}
	return hash(&r)
}

func less(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < 3; i++ {
		x, _ := strconv.Atoi(pa[i])
		y, _ := strconv.Atoi(pb[i])
		if x != y {
			return x < y
		}
	}
	return false
}

func main() {
	var input struct {
		Generated string     `json:"generated"`
		Manifests []Manifest `json:"manifests"`
		Toolspecs []ToolSpec `json:"toolspecs"`
	}
	decoder := json.NewDecoder(os.Stdin)
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&input); err != nil {
		fmt.Fprintln(os.Stderr, "catalog-go:", err)
		os.Exit(1)
	}
	sort.Slice(input.Manifests, func(i, j int) bool {
		a, b := input.Manifests[i], input.Manifests[j]
		return a.Name+"@"+a.Version < b.Name+"@"+b.Version
	})
	index := Index{SchemaVersion: 1, Generated: input.Generated, Servers: map[string]IndexServer{}}
	for i := range input.Manifests {
		m := input.Manifests[i]
		fmt.Printf("%s@%s %s %s\n", m.Name, m.Version, hash(&m), runtimeHash(m))
		server, ok := index.Servers[m.Name]
		if !ok {
			server = IndexServer{Latest: m.Version, Versions: map[string]*Manifest{}}
		}
		if less(server.Latest, m.Version) {
			server.Latest = m.Version
		}
		server.Versions[m.Version] = &input.Manifests[i]
		index.Servers[m.Name] = server
	}
	if len(input.Toolspecs) > 0 {
		index.Toolspecs = map[string]ToolSpec{}
		for _, s := range input.Toolspecs {
			index.Toolspecs[s.Name+"@"+s.Version] = s
		}
	}
	fmt.Printf("index %s\n", hash(&index))
}
