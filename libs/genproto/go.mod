module github.com/backend-prep/backend-prep/libs/genproto

go 1.26.0
