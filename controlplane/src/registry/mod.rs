//! One module per resource: create/get/list/update/delete/watch rules over Storage.
