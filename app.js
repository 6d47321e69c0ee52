const express = require("express");
const app = express()
const port = process.env.port || 8000
app.get('/',(req,res)=>{res.send('Hello world')})

const server = require("http").createServer(app)
server.listen(port, async ()=>{
    console.log('Express server listening on port' + server.address().port)
    process.send('ready')
})
