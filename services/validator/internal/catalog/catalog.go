// Package catalog holds the products the validator knows: what each costs and how many of it one
// order line may ask for. It is the single source of prices: clients send SKUs and quantities,
// never amounts.
//
// A default catalog is compiled into the binary (products.json), so the service runs with no
// files around it; CATALOG_PATH points at another file of the same format to replace it. Either
// way the catalog is checked once, when it is loaded, and is read-only afterwards, so lookups
// need no locks.
package catalog

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
)

// MaxQuantity is the largest max_quantity a product may have: the global bound on one order
// line, which a product can only tighten.
const MaxQuantity = 1000

// MaxUnitPriceCents bounds a unit price (one million in the catalog's currency). With at most 50
// lines of at most MaxQuantity units, no order total can come near the int64 limit.
const MaxUnitPriceCents = 100_000_000

// maxSKULength keeps SKUs short enough to print in messages and logs.
const maxSKULength = 32

// ErrInvalid is wrapped by every error about the content of a catalog, as opposed to a file
// that could not be read.
var ErrInvalid = errors.New("invalid catalog")

var (
	// skuPattern: upper-case words of letters and digits joined by single hyphens, e.g. BOOK-001.
	skuPattern = regexp.MustCompile(`^[A-Z0-9]+(-[A-Z0-9]+)*$`)
	// categoryPattern: a lower-case word such as "books", what ListProducts filters on.
	categoryPattern = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	// currencyPattern: an ISO 4217 alphabetic code.
	currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)
)

//go:embed products.json
var defaultFile []byte

// Product is one entry of the catalog.
type Product struct {
	// SKU is the stock-keeping unit, unique in the catalog, e.g. "BOOK-001".
	SKU string `json:"sku"`
	// Name is what a customer reads, e.g. "The Go Programming Language".
	Name string `json:"name"`
	// Category groups products for ListProducts, e.g. "books".
	Category string `json:"category"`
	// UnitPriceCents is the price of one unit in integer cents of the catalog's currency.
	UnitPriceCents int64 `json:"unit_price_cents"`
	// MaxQuantity is the largest quantity one order line may ask for, 1 to MaxQuantity.
	MaxQuantity int `json:"max_quantity"`
}

// Catalog is a validated, read-only set of products priced in one currency.
type Catalog struct {
	currency string
	products []Product // sorted by SKU, the order ListProducts promises
	bySKU    map[string]Product
}

// file is the on-disk format: one currency for the whole catalog, so an order can never mix two.
type file struct {
	Currency string    `json:"currency"`
	Products []Product `json:"products"`
}

// Default returns the catalog compiled into the binary.
func Default() (*Catalog, error) {
	c, err := Parse(defaultFile)
	if err != nil {
		return nil, fmt.Errorf("default catalog: %w", err)
	}
	return c, nil
}

// Load reads the catalog at path, or returns the default catalog when path is empty.
func Load(path string) (*Catalog, error) {
	if path == "" {
		return Default()
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse decodes a catalog file (JSON) strictly, rejecting unknown fields and trailing data, and
// validates it like New.
func Parse(data []byte) (*Catalog, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f file
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: unexpected data after the catalog object", ErrInvalid)
	}
	return New(f.Currency, f.Products)
}

// New validates products and builds a catalog from them. It reports every problem it finds, each
// naming the product by index and SKU, so one run fixes a whole file.
func New(currency string, products []Product) (*Catalog, error) {
	var problems []string
	if !currencyPattern.MatchString(currency) {
		problems = append(problems, fmt.Sprintf("currency %q is not an ISO 4217 code such as \"USD\"", currency))
	}
	if len(products) == 0 {
		problems = append(problems, "no products")
	}
	firstIndex := make(map[string]int, len(products))
	for i, p := range products {
		where := fmt.Sprintf("products[%d] (sku %q)", i, p.SKU)
		for _, problem := range p.problems() {
			problems = append(problems, where+": "+problem)
		}
		if first, seen := firstIndex[p.SKU]; seen {
			problems = append(problems, fmt.Sprintf("%s: duplicate sku, first at products[%d]", where, first))
		} else {
			firstIndex[p.SKU] = i
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrInvalid, strings.Join(problems, "; "))
	}

	c := &Catalog{
		currency: currency,
		products: slices.Clone(products),
		bySKU:    make(map[string]Product, len(products)),
	}
	slices.SortFunc(c.products, func(a, b Product) int { return strings.Compare(a.SKU, b.SKU) })
	for _, p := range c.products {
		c.bySKU[p.SKU] = p
	}
	return c, nil
}

func (p Product) problems() []string {
	var out []string
	switch {
	case p.SKU == "":
		out = append(out, "sku is empty")
	case len(p.SKU) > maxSKULength || !skuPattern.MatchString(p.SKU):
		out = append(out, fmt.Sprintf("sku must be at most %d characters of upper-case words A-Z, 0-9 joined by '-', e.g. BOOK-001", maxSKULength))
	}
	if strings.TrimSpace(p.Name) == "" {
		out = append(out, "name is empty")
	}
	if !categoryPattern.MatchString(p.Category) {
		out = append(out, fmt.Sprintf("category %q must be a lower-case word such as \"books\"", p.Category))
	}
	if p.UnitPriceCents <= 0 || p.UnitPriceCents > MaxUnitPriceCents {
		out = append(out, fmt.Sprintf("unit_price_cents %d is outside 1..%d", p.UnitPriceCents, MaxUnitPriceCents))
	}
	if p.MaxQuantity < 1 || p.MaxQuantity > MaxQuantity {
		out = append(out, fmt.Sprintf("max_quantity %d is outside 1..%d", p.MaxQuantity, MaxQuantity))
	}
	return out
}

// Currency is the ISO 4217 code every price of the catalog is in.
func (c *Catalog) Currency() string { return c.currency }

// Len is the number of products.
func (c *Catalog) Len() int { return len(c.products) }

// Lookup finds a product by its exact SKU.
func (c *Catalog) Lookup(sku string) (Product, bool) {
	p, ok := c.bySKU[sku]
	return p, ok
}

// Products returns the products of category, or all products when category is empty, sorted by
// SKU. The slice is the caller's to keep.
func (c *Catalog) Products(category string) []Product {
	if category == "" {
		return slices.Clone(c.products)
	}
	var out []Product
	for _, p := range c.products {
		if p.Category == category {
			out = append(out, p)
		}
	}
	return out
}
