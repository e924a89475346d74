// The project's pause program: the process that holds a pod sandbox's namespaces.
module kubeonkube.local/pause

go 1.24.0
