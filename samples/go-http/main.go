// go-http answers GET / on $PORT with a line naming the Go release that built it.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"runtime"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "Hello from kiln on Go %s\n", runtime.Version())
	})
	log.Printf("go-http listening on :%s", port)
	log.Fatal(http.ListenAndServe(":"+port, nil))
}
